"""Time our training loop against the reference tutorial loop and write the figures as JSON.

    .venv/bin/python benchmarks/bench_training.py [--device cpu|cuda] [--batches 100]
        [--models scratch,finetune,frozen_random,frozen_pretrained] [--out FILE]

Writes benchmarks/results/bench-<device>.json by default and prints the summary. Run it on an
otherwise idle machine (stop or pause any training first): another busy process on a core slows
every multi-threaded step many times over; the summary warns where it saw one.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import run_benchmark  # noqa: E402
from benchmarks.machine import stamp  # noqa: E402
from fmnist_core.presets import SCHEMES as CLASSIFIERS  # noqa: E402


def medians(runs: list[dict]) -> dict:
    """{model: {"speedup", "ours_epoch_s", "reference_epoch_s", "busy_runs"}}: the median of each over `runs`."""
    out = {}
    for model in runs[0]["models"]:
        got = [r["models"][model] for r in runs]
        out[model] = {"speedup": statistics.median(g["speedup"] for g in got if "speedup" in g) if "speedup" in got[0] else None,
                      "ours_epoch_s": statistics.median(g["ours"]["epoch_s"] for g in got),
                      "reference_epoch_s": (statistics.median(g["reference"]["epoch_s"] for g in got)
                                            if "reference" in got[0] else None),
                      "runs": len(got), "busy_runs": sum(bool(r.get("machine_looked_busy")) for r in runs)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--batches", type=int, default=100, help="training batches of 100 timed per loop (default 100)")
    p.add_argument("--models", default="finetune", help=f"comma-separated subset of {','.join(CLASSIFIERS)}")
    p.add_argument("--no-reference", action="store_true", help="time only our loop")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="our loop's arithmetic: fp32, or bf16 autocast (CUDA, or a CPU with bf16 units)")
    p.add_argument("--eval-batch-size", type=int, default=None,
                   help="our evaluation batch (default: TrainConfig.eval_batch_size, what training uses)")
    p.add_argument("--data", default=None, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the whole benchmark N times; the file keeps every run and the medians")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/bench-<device>.json)")
    args = p.parse_args(argv)

    runs = [run_benchmark(device=args.device, batches=args.batches, models=tuple(args.models.split(",")),
                          data_dir=args.data, reference=not args.no_reference, precision=args.precision,
                          progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                          eval_batch_size=args.eval_batch_size) for _ in range(max(1, args.repeat))]
    result = runs[-1] if len(runs) == 1 else {**runs[-1], "runs": runs, "median": medians(runs)}
    result["command"] = "python benchmarks/bench_training.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    result.update(stamp())                    # cpu_model, cpu_count, load_average (after), commit, date
    device_kind = "cpu" if result["device"].startswith("cpu") else "cuda"
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / (
        f"bench-{device_kind}.json" if args.precision == "fp32" else f"bench-{device_kind}-{args.precision}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(result["summary"])
    if "median" in result:
        for model, m in result["median"].items():
            print(f"{model}: median of {m['runs']}: speedup {m['speedup']}, ours {m['ours_epoch_s']} s/epoch")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
