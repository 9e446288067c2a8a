"""What Ray Tune costs on top of the training it runs: a small study through `run_study` against the
same trials trained one after another by `train_run` in one process.

    .venv/bin/python benchmarks/ray_overhead.py [--trials 4] [--epochs 3] [--subset 5000] [--preset NAME] [--out FILE]
    .venv/bin/python benchmarks/ray_overhead.py --placement [--preset NAME] ...

Both sides train the same specs (the `--preset` network, reference `scratch` by default, at `--trials`
seeds) into fresh stores; the study side's wall time includes starting its local Ray instance. Writes
benchmarks/results/ray-overhead.json. With --placement it runs the study twice instead, one trial at
a time with all the CPUs against one trial per CPU, each with its own threads, and writes
ray-placement-<preset>.json. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_core import RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.study import load_study  # noqa: E402
from fmnist_core.train import train_run  # noqa: E402
from fmnist_core.tune import run_study  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--preset", default="reference-scratch", help="the network trained (a preset with no pretraining)")
    ap.add_argument("--placement", action="store_true", help="compare trials placed one at a time and one per CPU")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    f = tmp / "overhead.toml"
    f.write_text(f'name = "overhead"\ntitle = "Ray overhead"\nsource = "benchmark"\nbase = "{args.preset}"\n'
                 f'seeds = {args.trials}\nmetrics = ["final_train_loss"]\n[[trials]]\nlabel = "{args.preset}"\n')
    study = load_study(f)
    specs = [spec for _, _, spec in study.specs(args.epochs, args.subset)]
    if args.placement:
        return placement(study, specs, args, tmp)

    import torch
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    data = load_fashion_mnist()
    store = RunStore(tmp / "sequential")
    for spec in specs:
        train_run(spec, data, store, "cpu", snapshots=False)
    sequential = time.perf_counter() - t0
    train_s = sum(h["seconds"] for s in specs for h in store.manifest(s.run_id)["history"])

    t0 = time.perf_counter()
    summary = run_study(study, RunStore(tmp / "ray"), max_concurrent=1, epochs=args.epochs, subset=args.subset,
                        device="cpu")
    through_ray = time.perf_counter() - t0
    assert summary["completed"] == len(specs), summary
    ray_store = RunStore(tmp / "ray")
    ray_train_s = sum(h["seconds"] for s in specs for h in ray_store.manifest(s.run_id)["history"])
    result = {
        "trials": len(specs), "epochs": args.epochs, "subset": args.subset, "max_concurrent": 1,
        "sequential_wall_s": round(sequential, 1), "sequential_epoch_s_total": round(train_s, 1),
        "ray_wall_s": round(through_ray, 1), "ray_epoch_s_total": round(ray_train_s, 1),
        "ratio_wall": round(through_ray / sequential, 3),
        "ray_fixed_cost_s": round(through_ray - ray_train_s - (sequential - train_s), 1),
        "command": " ".join(["benchmarks/ray_overhead.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / "ray-overhead.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


def placement(study, specs, args, tmp: Path) -> None:
    """The same study one trial at a time (every CPU's threads in it) and one trial per CPU."""
    import os
    cpus = os.cpu_count()
    result = {"preset": args.preset, "trials": len(specs), "epochs": args.epochs, "subset": args.subset, "cpus": cpus}
    for name, concurrent in (("one_at_a_time", 1), ("one_per_cpu", cpus)):
        t0 = time.perf_counter()
        summary = run_study(study, RunStore(tmp / name), max_concurrent=concurrent, epochs=args.epochs,
                            subset=args.subset, device="cpu")
        wall = time.perf_counter() - t0
        assert summary["completed"] == len(specs), summary
        store = RunStore(tmp / name)
        epoch_s = [h["seconds"] for s in specs for h in store.manifest(s.run_id)["history"]]
        result[name] = {"max_concurrent": concurrent, "threads_per_trial": cpus // concurrent,
                        "wall_s": round(wall, 1), "epoch_s_mean": round(sum(epoch_s) / len(epoch_s), 2)}
    result["speedup_one_per_cpu"] = round(result["one_at_a_time"]["wall_s"] / result["one_per_cpu"]["wall_s"], 3)
    result.update(command=" ".join(["benchmarks/ray_overhead.py", *sys.argv[1:]]), date=time.strftime("%Y-%m-%d %H:%M"))
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"ray-placement-{args.preset}.json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
