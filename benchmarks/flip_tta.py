"""Test-time flip: does averaging a classifier's predictions on each image and its mirror help?

    .venv/bin/python benchmarks/flip_tta.py --run reference-scratch-fe3c9b99cb --which best

Prints validation (the held-out 10,000 training images) and test accuracy, plain and with the
softmax of the image and of its left-right mirror averaged. Decide on validation, report on test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from fmnist_core import RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.evaluate import predict_logits  # noqa: E402
from fmnist_core.train import split_for  # noqa: E402


def flip_tta(model: torch.nn.Module, images_u8: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(plain accuracy, accuracy of the averaged softmax of each image and its mirror)."""
    plain = predict_logits(model, images_u8).softmax(1)
    mirrored = predict_logits(model, images_u8.flip(-1)).softmax(1)
    labels = labels.cpu()
    return (float((plain.argmax(1) == labels).float().mean()),
            float(((plain + mirrored).argmax(1) == labels).float().mean()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="a classifier run (repeatable)")
    ap.add_argument("--which", default="best", choices=["best", "last"])
    ap.add_argument("--checkpoints", default=None)
    args = ap.parse_args()
    store, data = RunStore(args.checkpoints), load_fashion_mnist()
    print(f"{'run':<36} {'which':<5} {'val plain':>9} {'val flip':>9} {'test plain':>10} {'test flip':>9}")
    for ref in args.run:
        rid = store.resolve(ref)
        spec = store.spec(rid)
        tensors = split_for(spec, data, "cpu")
        model = store.load_model(rid, args.which)
        val = flip_tta(model, tensors.val_x, tensors.val_y)
        test = flip_tta(model, tensors.test_x, tensors.test_y)
        print(f"{rid:<36} {args.which:<5} {val[0]:>9.4f} {val[1]:>9.4f} {test[0]:>10.4f} {test[1]:>9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
