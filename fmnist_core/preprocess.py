"""Any image or sketch -> the 28x28 input the models expect, with the intermediate steps.

Fashion-MNIST garments are light on a black background, centred, their longest side filling the
frame. A phone photo, a shop image on white, a screenshot or a canvas sketch is brought to that
form in these steps (each kept for display):

    decoded   any mode flattened to RGB in [0, 1] (EXIF orientation, alpha, palette, 16-bit, CMYK)
    grey      luminance, with the garment made light and the background dark (polarity from the border)
    cleaned   background level subtracted, noise below a threshold removed, contrast stretched
    filled    closed outlines (sketches) filled in, since the data set has solid garments
    input     cropped to the garment, aspect kept, longest side scaled to 28, centred: (28, 28) in [0, 1]
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

MAX_FILE_BYTES = 20 * 1024 * 1024          # larger uploads are refused before decoding
MAX_PIXELS = 40_000_000                    # width x height; a "decompression bomb" claims more
MIN_SIDE = 8                               # pixels; smaller images carry no garment
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
WORK_SIDE = 256                            # big images are reduced to this before cleaning (speed)


class ImageInputError(ValueError):
    """The input cannot be turned into a garment image; the message says why, for a person."""


@dataclass
class Preprocessed:
    input: np.ndarray                          # float32 (28, 28) in [0, 1], garment light on black
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (name, float image in [0, 1])
    inverted: bool = False                     # the source was dark on light
    filled: bool = False                       # an outline was filled in

    def as_uint8(self) -> np.ndarray:
        return np.round(self.input * 255).astype(np.uint8)


# ---- decoding --------------------------------------------------------------------------------
def decode_image(data: bytes, name: str = "the file") -> Image.Image:
    """Bytes -> a PIL image of an accepted format, refusing bad input before heavy decoding."""
    if len(data) == 0:
        raise ImageInputError(f"{name} is empty (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise ImageInputError(f"{name} is {len(data) / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        head = data[:200].lstrip().lower()
        what = "an SVG drawing" if head.startswith((b"<svg", b"<?xml")) else \
            "text" if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:200]) else "not a recognised image"
        raise ImageInputError(f"{name} is {what}; accepted formats are {', '.join(ACCEPTED_FORMATS)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageInputError(f"{name} claims an enormous size and was refused before decoding ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageInputError(f"{name} could not be read as an image ({e})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"{name} claims {w}x{h} pixels (over {MAX_PIXELS:,}); refused before decoding")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{name} is only {w}x{h} pixels; a garment needs at least {MIN_SIDE}x{MIN_SIDE}")
    try:
        img.seek(0)                     # first frame of an animation
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageInputError(f"{name} is truncated or damaged ({e})") from None
    return img


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any PIL mode -> (RGB float (H, W, 3) in [0, 1], alpha (H, W) in [0, 1] or None)."""
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:
        pass                              # a broken EXIF block is not worth refusing the image
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        g = np.clip(a / top, 0, 1)
        return np.repeat(g[..., None], 3, axis=2), None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode not in ("RGB", "RGBA", "L"):
        img = img.convert("RGB")           # CMYK, YCbCr, LAB, HSV
    a = np.asarray(img, dtype=np.float64) / 255.0
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=2), None
    if a.shape[2] == 4:
        alpha = a[..., 3]
        return a[..., :3], (alpha if alpha.min() < 0.98 else None)
    return a, None


# ---- cleaning --------------------------------------------------------------------------------
def _border(a: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([a[:width].reshape(-1, *a.shape[2:]), a[-width:].reshape(-1, *a.shape[2:]),
                           a[:, :width].reshape(-1, *a.shape[2:]), a[:, -width:].reshape(-1, *a.shape[2:])])


def _reduce(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Shrink large images to about WORK_SIDE pixels on the long side (area averaging)."""
    h, w = rgb.shape[:2]
    f = max(h, w) / WORK_SIDE
    if f <= 1.5:
        return rgb, alpha
    size = (max(1, round(w / f)), max(1, round(h / f)))
    def shrink(x):
        im = Image.fromarray(np.round(x * 255).astype(np.uint8))
        return np.asarray(im.resize(size, Image.BOX), dtype=np.float64) / 255.0
    return shrink(rgb), (shrink(alpha) if alpha is not None else None)


def garment_intensity(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """Garment-light-on-dark intensity (H, W) in [0, 1]; True where the source was dark on light."""
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    if alpha is not None:
        # Transparent pixels are background. Strokes' own brightness decides the ground they sit on:
        # light strokes go on black, dark strokes on white, so polarity below comes out right.
        opaque = alpha > 0.5
        stroke_light = opaque.any() and float(np.median(lum[opaque])) > 0.5
        ground = 0.0 if stroke_light else 1.0
        lum = lum * alpha + ground * (1 - alpha)
        rgb = rgb * alpha[..., None] + ground * (1 - alpha[..., None])
    width = max(1, min(lum.shape) // 20)
    bg_rgb = np.median(_border(rgb, width), axis=0)
    bg_lum = float(bg_rgb @ np.array([0.299, 0.587, 0.114]))
    inverted = bg_lum > 0.5
    # Distance from the background colour finds the garment even on a tinted ground; luminance
    # gives its shading, the way Fashion-MNIST's negated product photos do.
    dist = np.linalg.norm(rgb - bg_rgb, axis=2) / np.sqrt(3)
    shade = (bg_lum - lum) if inverted else (lum - bg_lum)
    intensity = np.clip(np.maximum(shade, 0.5 * dist), 0, 1)
    return intensity, inverted


def clean(intensity: np.ndarray) -> np.ndarray:
    """Subtract the background level, drop noise and specks, stretch the garment to full range."""
    smooth = ndimage.median_filter(intensity, size=3) if min(intensity.shape) >= 32 else intensity
    width = max(1, min(smooth.shape) // 20)
    border = _border(smooth, width)
    noise = float(np.median(np.abs(border - np.median(border)))) * 1.4826
    threshold = max(0.08, float(np.median(border)) + 4 * noise)
    mask = smooth > threshold
    if min(mask.shape) >= 32:
        mask = ndimage.binary_opening(mask, iterations=1)      # specks of noise
    if not mask.any():
        return np.zeros_like(intensity)
    labels, n = ndimage.label(mask)
    if n > 1:
        # Keep components large enough to be part of the garment (strap, sleeve, sole).
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        keep = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.05 * sizes.max()))
        mask = keep
    top = float(np.percentile(smooth[mask], 98)) if mask.any() else 1.0
    out = np.where(mask, np.clip((smooth - threshold * 0.5) / max(top - threshold * 0.5, 1e-3), 0, 1), 0.0)
    return out


def fill_outline(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """Fill a closed outline (a sketch) so it reads as a solid garment; solid shapes are unchanged."""
    mask = x > 0.2
    if not mask.any():
        return x, False
    # Close small gaps in hand-drawn strokes before filling.
    closed = ndimage.binary_closing(mask, iterations=max(1, min(x.shape) // 64))
    filled = ndimage.binary_fill_holes(closed)
    if filled.sum() < 1.6 * mask.sum():
        return x, False                    # already solid (or an open line): leave it
    interior = filled & ~mask
    level = 0.75 * float(np.median(x[mask]))
    return np.where(interior, level, x), True


def frame(x: np.ndarray, side: int = 28) -> np.ndarray:
    """Crop to the garment, keep its aspect, longest side to `side`, centred by bounding box."""
    ys, xs = np.nonzero(x > 0.05)
    if len(ys) == 0:
        raise ImageInputError("no garment found: the picture is blank or one flat colour")
    crop = x[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    im = Image.fromarray(np.round(crop * 255).astype(np.uint8))
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    small = np.asarray(im.resize((nw, nh), resample), dtype=np.float32) / 255.0
    out = np.zeros((side, side), np.float32)
    top, left = (side - nh) // 2, (side - nw) // 2
    out[top:top + nh, left:left + nw] = small
    return out


# ---- the pipeline ----------------------------------------------------------------------------
def preprocess(image: Image.Image | np.ndarray, plain: bool = False) -> Preprocessed:
    """An image (PIL, or an array (H, W), (H, W, 3) or (H, W, 4) uint8 or float) -> Preprocessed.

    `plain=True` is the baseline: grey, resized to 28x28, nothing else.
    """
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
        if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
            raise ImageInputError(f"expected an image array (H, W[, C]); got shape {arr.shape}")
        image = Image.fromarray(arr)
    if min(image.size) < MIN_SIDE:
        raise ImageInputError(f"the image is only {image.size[0]}x{image.size[1]} pixels; "
                              f"a garment needs at least {MIN_SIDE}x{MIN_SIDE}")
    rgb, alpha = to_rgb_alpha(image)
    steps = [("decoded", rgb if alpha is None else rgb * alpha[..., None])]
    if plain:
        grey = Image.fromarray(np.round(rgb @ np.array([0.299, 0.587, 0.114]) * 255).astype(np.uint8))
        x = np.asarray(grey.resize((28, 28), Image.BILINEAR), dtype=np.float32) / 255.0
        return Preprocessed(x, steps + [("input", x)])
    rgb, alpha = _reduce(rgb, alpha)
    intensity, inverted = garment_intensity(rgb, alpha)
    steps.append(("grey", intensity))
    cleaned = clean(intensity)
    if not (cleaned > 0.05).any() or (cleaned > 0.05).mean() < 0.001:
        raise ImageInputError("no garment found: the picture is blank or one flat colour")
    steps.append(("cleaned", cleaned))
    filled_img, filled = fill_outline(cleaned)
    if filled:
        steps.append(("filled", filled_img))
    x = frame(filled_img)
    steps.append(("input", x))
    return Preprocessed(x, steps, inverted, filled)


def preprocess_bytes(data: bytes, name: str = "the file", plain: bool = False) -> Preprocessed:
    return preprocess(decode_image(data, name), plain=plain)
