"""Time runs trained together (fmnist_core/together.py) against the same runs trained one after another.

    .venv/bin/python benchmarks/together_timing.py [--runs 3] [--subset 3000] [--epochs 1] [--rounds 2]

The reference scratch spec at seeds 0..runs-1, shrunk; each round trains them alone (train_run, one
after another) and together, in alternating order, each in a fresh temporary store. Writes
benchmarks/results/together-cpu.json (or --out) with the seconds of each, the CPU model, the load
average, the commit and the date.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fmnist_core import RunStore, load_fashion_mnist, reference_specs  # noqa: E402
from fmnist_core.precision import cpu_name  # noqa: E402
from fmnist_core.together import train_together  # noqa: E402
from fmnist_core.train import resolve_device, train_run  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    data = load_fashion_mnist().to(device)
    base = reference_specs({"epochs": args.epochs, "subset": args.subset})["scratch"]
    specs = [base.with_overrides({"seed": s}) for s in range(args.runs)]
    rows = []
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):
        order = ("alone", "together") if r % 2 == 0 else ("together", "alone")
        row = {}
        for how in order:
            with tempfile.TemporaryDirectory() as tmp:
                store = RunStore(tmp)
                t0 = time.perf_counter()
                if how == "alone":
                    for s in specs:
                        train_run(s, data, store, device)
                else:
                    train_together(specs, data, store, device)
                row[how] = round(time.perf_counter() - t0, 2)
        row["together_speedup"] = round(row["alone"] / row["together"], 3)
        rows.append(row)
        load.append(os.getloadavg()[0])
        print(row, flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"runs": args.runs, "subset": args.subset, "epochs": args.epochs, "device": str(device),
              "cpu_model": cpu_name(), "torch_threads": torch.get_num_threads(), "rounds": rows,
              "load_average_1min": load, "commit": commit,
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/together_timing.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"together-{device.type}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
