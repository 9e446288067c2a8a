"""Two training runs of the same models side by side: did a change to the training code keep results?

    .venv/bin/python benchmarks/compare_runs.py NEW_CHECKPOINTS [--against checkpoints] [--models finetune,...]

For each reference scheme with a run in both stores (presets.reference_runs), prints
validation/test accuracy per epoch for the epochs both ran, and the mean and largest difference.
Two runs with different dropout draws differ by noise only (epoch to epoch, a few tenths of a
point on 10,000 images); a change that broke training shows as a gap that grows.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import RunStore  # noqa: E402
from fmnist_core.presets import SCHEMES, reference_runs  # noqa: E402


def compare(new: RunStore, old: RunStore, models) -> str:
    out = []
    new_ids, old_ids = reference_runs(new), reference_runs(old)
    for name in models:
        if name not in new_ids:
            continue
        a, b = new.manifest(new_ids[name]), old.manifest(old_ids[name])
        if a is None or b is None:
            continue
        rows = list(zip(a["history"], b["history"]))
        out.append(f"{name}: {len(rows)} epochs in both")
        out.append("epoch | val acc new / old | test acc new / old")
        for ra, rb in rows:
            out.append(f"{ra['epoch']:>5} | {ra['val_acc']:.4f} / {rb['val_acc']:.4f} | "
                       f"{ra['test_acc']:.4f} / {rb['test_acc']:.4f}")
        diffs = [100 * (ra["test_acc"] - rb["test_acc"]) for ra, rb in rows]
        out.append(f"test acc, new - old: mean {sum(diffs) / len(diffs):+.2f} pts, largest "
                   f"{max(diffs, key=abs):+.2f} pts, last epoch {diffs[-1]:+.2f} pts")
        out.append("")
    return "\n".join(out) or "no classifier is in both stores"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("new")
    ap.add_argument("--against", default=None, help="the other store (default: the shipped checkpoints/)")
    ap.add_argument("--models", default=",".join(SCHEMES))
    args = ap.parse_args()
    print(compare(RunStore(args.new), RunStore(args.against), args.models.split(",")))
