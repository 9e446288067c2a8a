"""Small image helpers: mosaics of 28x28 images, PNG thumbnails for chart tooltips."""
from __future__ import annotations

import base64
import io

import numpy as np


def tile(images: np.ndarray, cols: int, pad: int = 2, scale: int = 1) -> np.ndarray:
    """(N, 28, 28) in [0, 1] or uint8 -> one uint8 mosaic image with `cols` columns."""
    imgs = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    n = len(imgs)
    rows = max(1, -(-n // cols))
    h, w = imgs.shape[1:]
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), np.float32) * 0.25
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    out = np.round(out * 255).astype(np.uint8)
    return np.kron(out, np.ones((scale, scale), np.uint8)) if scale > 1 else out


def thumbnail_uri(image: np.ndarray) -> str:
    """A 28x28 image as a PNG data URI (for Altair tooltips)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image if image.dtype == np.uint8 else np.round(image * 255).astype(np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
