"""A preset's runs at every seed in the store: test accuracy, and how long each took to train where.

    .venv/bin/python benchmarks/preset_seeds.py sketch-robust --json benchmarks/results/sketch-robust-seeds.json

Read from the runs' manifests (history and provenance), so it costs nothing and works for runs
shipped as their history only. Each run records the device it trained on (the CPU model is in it for
runs trained since the provenance names it), its command, commit and the date its manifest was
written; `wall_time_s` is its own training time, which overlaps where seeds trained side by side.
The file's top-level stamp is the machine that read the manifests, not necessarily the one that
trained them.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import stamp                  # noqa: E402
from fmnist_core import RunStore                      # noqa: E402
from fmnist_core.presets import preset, specs_for     # noqa: E402
from fmnist_core.runs import DEFAULT_DIR, selected_record  # noqa: E402


def seeds_of(store: RunStore, name: str, seeds: list[int]) -> dict:
    """{"runs": [{"seed", "id", "test_accuracy", ...}], "test_accuracy": {"mean", "std", "n"}}."""
    rows = []
    for seed in seeds:
        rid = store.find(specs_for(name, {"seed": seed})[-1])
        if rid is None:
            rows.append({"seed": seed, "id": None})
            continue
        m = store.manifest(rid)
        prov, rec = m.get("provenance") or {}, selected_record(m) or {}
        rows.append({"seed": seed, "id": rid, "complete": m["complete"], "has_weights": bool(m["roles"]),
                     "epochs": len(m["history"]), "test_accuracy": rec.get("test_acc"),
                     "val_accuracy": rec.get("val_acc"), "wall_time_s": prov.get("wall_time_s"),
                     "device": prov.get("device"),
                     "command": prov.get("command"), "commit": prov.get("commit"), "date": m.get("updated")})
    accs = [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]
    summary = {"mean": round(statistics.mean(accs), 4) if accs else None,
               "std": round(statistics.stdev(accs), 4) if len(accs) > 1 else None, "n": len(accs)}
    return {"preset": name, "runs": rows, "test_accuracy": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--checkpoints", default=str(DEFAULT_DIR))
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args(argv)
    preset(args.preset)                               # an unknown preset is named before anything runs
    r = seeds_of(RunStore(args.checkpoints), args.preset, [int(s) for s in args.seeds.split(",")])
    r.update(stamp(), command="benchmarks/preset_seeds.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    for row in r["runs"]:
        print(f"seed {row['seed']}: {row['id'] or 'not in the store'}"
              + (f"  test {row['test_accuracy']}  {row['wall_time_s']} s on {row['device']}" if row["id"] else ""))
    print(f"test accuracy {r['test_accuracy']}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    return 0 if all(row["id"] for row in r["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
