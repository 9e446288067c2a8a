"""Time `study run` with its stackable trials trained together against the same study trained as
separate Ray Tune trials side by side (the default on a CPU).

    .venv/bin/python benchmarks/study_together.py [--seeds 4] [--subset 10000] [--epochs 1] [--rounds 2]

A study of the reference `scratch` at `--seeds` seeds, shrunk to `--subset` images and `--epochs`
epochs; each round runs it both ways (alternating which goes first), each in a fresh temporary store,
through `fmnist_core.tune.run_study` on a local Ray instance of its own. Writes
benchmarks/results/study-together-cpu.json (or --out): the seconds of each, the medians, the
machine (benchmarks/machine.py's stamp), and the command.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import stamp            # noqa: E402
from fmnist_core import RunStore                # noqa: E402
from fmnist_core.study import load_study        # noqa: E402
from fmnist_core.tune import run_study          # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "study-together-cpu.json"))
    args = ap.parse_args(argv)
    os.environ.pop("RAY_ADDRESS", None)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "seeds.toml"
        f.write_text(f'name = "seeds"\ntitle = "timing"\nsource = "benchmarks/study_together.py"\n'
                     f'base = "reference-scratch"\nseeds = {args.seeds}\nmetrics = ["max_val_acc"]\n'
                     '[[trials]]\nlabel = "scratch"\n')
        study = load_study(f)
        for r in range(args.rounds):
            row = {}
            for together in ([True, False] if r % 2 == 0 else [False, True]):
                store = RunStore(Path(tmp) / f"r{r}-{together}")
                t0 = time.perf_counter()
                s = run_study(study, store, epochs=args.epochs, subset=args.subset, device=args.device,
                              together=together)
                wall = time.perf_counter() - t0
                if s["completed"] != args.seeds:
                    raise SystemExit(f"round {r}, together={together}: {s}")
                row["together" if together else "side_by_side"] = round(wall, 2)
            row["together_speedup"] = round(row["side_by_side"] / row["together"], 3)
            rounds.append(row)
            print(row, flush=True)
    med = {k: statistics.median(x[k] for x in rounds) for k in ("together", "side_by_side")}
    out = {"seeds": args.seeds, "subset": args.subset, "epochs": args.epochs, "device": args.device,
           "rounds": rounds, "median_s": med,
           "together_speedup_of_medians": round(med["side_by_side"] / med["together"], 3),
           **stamp(), "command": "benchmarks/study_together.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"together {med['together']} s, side by side {med['side_by_side']} s: "
          f"{out['together_speedup_of_medians']}x ({out['cpu_model']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
