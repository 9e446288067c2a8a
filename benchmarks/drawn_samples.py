"""A sheet of drawn-style training images (docs/drawings.md): row 1 twenty training garments, rows 2-6
the drawings `fmnist_core.drawn.draw` makes of them at seeds 0-4 (the preset sketch-robust's settings).

    .venv/bin/python benchmarks/drawn_samples.py [--out benchmarks/results/drawn-samples.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import load_fashion_mnist  # noqa: E402
from fmnist_core.drawn import draw  # noqa: E402
from fmnist_core.presets import preset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/results/drawn-samples.png")
    args = p.parse_args(argv)
    r = preset("sketch-robust").spec.recipe
    x = load_fashion_mnist().train_images[:20]
    rows = [x.numpy()] + [draw(x, r.drawn_outline, r.drawn_rotate, torch.Generator().manual_seed(s)).numpy()
                          for s in range(5)]
    sheet = np.concatenate([np.concatenate(list(row), 1) for row in rows], 0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 3, sheet.shape[0] * 3), Image.NEAREST).save(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
