"""Files the TensorBoard / TF embedding projector loads: one vectors TSV per layer, a metadata TSV
with the labels, a sprite image of the inputs and projector_config.pbtxt tying them together.

Load them with `tensorboard --logdir DIR` (Projector tab) or, at projector.tensorflow.org, with
"Load" (vectors, then metadata). The projector itself caps what it shows at about 10,000 points.
"""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import CLASS_NAMES
from ..store import atomic_write

SPRITE = "sprite.png"
METADATA = "metadata.tsv"
CONFIG = "projector_config.pbtxt"


def sprite(images: np.ndarray) -> Image.Image:
    """The images (N, 28, 28) uint8 tiled row by row on a square grid, dark garments on white."""
    n = len(images)
    side = math.ceil(math.sqrt(n))
    grid = np.full((side * 28, side * 28), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, side)
        grid[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28] = 255 - im
    return Image.fromarray(grid, mode="L")


def write(folder: str | Path, features: dict[str, np.ndarray], labels: np.ndarray, images: np.ndarray,
          run: str = "") -> list[Path]:
    """Write the projector files of `features` ({layer: (N, ...)}) into `folder`; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    meta = io.StringIO()
    meta.write("label\tclass\n")
    for y in labels:
        meta.write(f"{int(y)}\t{CLASS_NAMES[int(y)]}\n")
    atomic_write(folder / METADATA, meta.getvalue().encode())
    paths.append(folder / METADATA)
    buf = io.BytesIO()
    sprite(images).save(buf, format="PNG")
    atomic_write(folder / SPRITE, buf.getvalue())
    paths.append(folder / SPRITE)
    config = []
    for layer, f in features.items():
        name = f"vectors-{layer}.tsv"
        text = io.StringIO()
        np.savetxt(text, f.reshape(len(f), -1), fmt="%.5g", delimiter="\t")
        atomic_write(folder / name, text.getvalue().encode())
        paths.append(folder / name)
        config.append(
            "embeddings {\n"
            f'  tensor_name: "{run + ":" if run else ""}{layer}"\n'
            f'  tensor_path: "{name}"\n'
            f'  metadata_path: "{METADATA}"\n'
            f'  sprite {{\n    image_path: "{SPRITE}"\n    single_image_dim: 28\n    single_image_dim: 28\n  }}\n'
            "}\n")
    atomic_write(folder / CONFIG, "".join(config).encode())
    paths.append(folder / CONFIG)
    return paths
