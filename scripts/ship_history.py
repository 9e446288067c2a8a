"""Ship a study's runs, trained in another store, into checkpoints/ as their history only (no weights).

    .venv/bin/python scripts/ship_history.py r2026-table1 --source /work/extra-runs --seeds 1,2

Shipped weights must keep checkpoints/ under 100 MB; a study's extra seeds, which only give its tables
their spread, and the exploration trials of `beyond-recipe`, ship as manifests (spec, per-epoch history,
provenance, the sha256 of the files left out).
Runs already in checkpoints/ are left as they are; incomplete runs are skipped and named.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import RunStore                      # noqa: E402
from fmnist_core.runs import DEFAULT_DIR              # noqa: E402
from fmnist_core.study import load_study              # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--source", required=True, help="the store the runs were trained in")
    ap.add_argument("--seeds", default="1,2", help="comma-separated seeds to ship this way (default 1,2)")
    args = ap.parse_args()
    study = load_study(args.study)
    seeds = {int(s) for s in args.seeds.split(",")}
    source, shipped = RunStore(args.source), RunStore(DEFAULT_DIR)
    reason = (f"its weights were left out to keep checkpoints/ under 100 MB; `python -m fmnist_core study run "
              f"{study.name} --checkpoints DIR` trains this study again in a folder of your own")
    for trial, seed, spec in study.specs():
        if seed not in seeds:
            continue
        rid, there = source.find(spec), shipped.find(spec)
        m = source.manifest(rid) if rid else None
        if there:
            print(f"{trial.label} seed {seed}: already shipped ({there})")
        elif m is None or not m["complete"]:
            print(f"{trial.label} seed {seed}: {'partial' if m else 'not'} in {args.source}; skipped")
        else:
            source.verify(rid)
            print(f"{trial.label} seed {seed}: {shipped.add_history_only(m, reason)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
