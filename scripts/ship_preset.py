"""Ship a preset's runs, trained in another store (the GPU machine's), into checkpoints/: one seed with
its weights, others as their history only (checkpoints/ stays under 100 MB).

    .venv/bin/python scripts/ship_preset.py sketch-robust --source /tmp/gpu-extra --weights 0 --history 1,2
    .venv/bin/python scripts/ship_preset.py sketch-robust --source /work/extra-runs --leave-out best

`--leave-out best` ships the weights seeds without their best validation epoch's file (the results
report the last epoch; the manifest's `weights_left_out` names the file left out).

A run is found in the source by its spec (the preset at that seed); it must be complete and verify
(every file against its manifest's sha256, the weights against the network; a history seed packed
without its weights files is taken on its manifest). Runs already in
checkpoints/ are left as they are (a stored run is never replaced); missing or partial ones are named
and skipped (exit 1).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import RunStore                      # noqa: E402
from fmnist_core.presets import specs_for             # noqa: E402
from fmnist_core.runs import DEFAULT_DIR, history_only  # noqa: E402
from fmnist_core.store import atomic_write            # noqa: E402


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip() != ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--source", required=True, help="the store the runs were trained in")
    ap.add_argument("--weights", default="0", help="seeds shipped with their weights (default 0)")
    ap.add_argument("--history", default="1,2", help="seeds shipped as their history only (default 1,2)")
    ap.add_argument("--dest", default=str(DEFAULT_DIR), help="default: the shipped checkpoints/")
    ap.add_argument("--leave-out", default="", help="roles whose files the weights seeds ship without (e.g. best)")
    args = ap.parse_args()
    source, dest = RunStore(args.source), RunStore(args.dest)
    reason = (f"its weights were left out to keep checkpoints/ under 100 MB; `python -m fmnist_core train "
              f"--preset {args.preset} --seed N` trains it again in a folder of your own")
    leave_out = tuple(r for r in args.leave_out.split(",") if r.strip())
    partial = ("its best validation epoch's weights were left out to keep checkpoints/ under 100 MB; its "
               "results report the last epoch, whose weights ship")
    bad = 0
    for seed, with_weights in [(s, True) for s in _seeds(args.weights)] + [(s, False) for s in _seeds(args.history)]:
        spec = specs_for(args.preset, {"seed": seed})[-1]
        rid, there = source.find(spec), dest.find(spec)
        m = source.manifest(rid) if rid else None
        if there:
            print(f"seed {seed}: already shipped ({there})")
        elif m is None or not m["complete"]:
            print(f"seed {seed}: {'partial' if m else 'not'} in {args.source}; skipped")
            bad += 1
        elif not with_weights:
            if all((source.folder(rid) / f).is_file() for f in m["files"]):
                source.verify(rid)                    # a pack may bring a history seed's manifest only
            print(f"seed {seed}: {dest.add_history_only(m, reason)} (history only)")
        else:
            source.verify(rid)
            folder = source.folder(rid)
            target = Path(args.dest) / rid
            with tempfile.TemporaryDirectory(dir=args.dest) as tmp:     # whole or not at all
                staging = Path(tmp) / rid
                staging.mkdir()
                shipped = history_only(m, partial, leave_out) if leave_out else m
                for name in shipped["files"]:
                    shutil.copy2(folder / name, staging / name)
                atomic_write(staging / "manifest.json", json.dumps(shipped, indent=1).encode())
                staging.rename(target)
            RunStore(args.dest).verify(rid)
            print(f"seed {seed}: {target} (with weights)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
