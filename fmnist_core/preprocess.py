"""Any image or sketch -> the 28x28 input the models expect, with the intermediate steps.

Fashion-MNIST garments are light on a black background, centred, their longest side filling the
frame. A phone photo, a shop image on white, a screenshot or a canvas sketch is brought to that
form in these steps (each kept for display):

    decoded   any mode flattened to RGB in [0, 1] (EXIF orientation, alpha, palette, 16-bit, CMYK)
    grey      luminance, with the garment made light and the background dark (polarity from the border)
    cleaned   background level subtracted, noise below a threshold removed, contrast stretched
    levelled  a flat shape (a drawing, a silhouette: one level, no shading) set to a garment-like
              brightness (0.8) instead of full white
    filled    outlines (sketches) filled in up to the strokes' centre line, small gaps bridged,
              since the data set has solid garments
    input     cropped to the garment, aspect kept, longest side scaled to 28, centred the way
              Fashion-MNIST centres: (28, 28) in [0, 1]

The choices are measured by `benchmarks/realworld.py` (product photos and canvas sketches rendered
from the test set; results in benchmarks/results/).
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

LUMA = np.array([0.299, 0.587, 0.114])
TOP_PERCENTILE = 99.9                      # this brightness goes to 1 (Fashion-MNIST images reach 255)
NOISE_FLOOR = 0.03                         # intensities below this are background even in a clean image
FLAT_LEVEL = 0.8                           # a flat shape's brightness: between Fashion-MNIST's mean inside a
                                           # garment (0.64) and white; measured best over classifiers
FLAT_SHARE = 0.95                          # a shape is flat where this share of its core has one level
GAP = 0.04                                 # stroke gaps up to about 2 x GAP x the garment's size are bridged
OUTLINE_INTERIOR = 0.3                     # an outline: filling adds at least this share of its strokes' area
OUTLINE_THICKER = 2.0                      # ... and makes the shape this many times thicker than its strokes
CENTRE_LINE = 0.8                          # a filled outline reaches this share of half a stroke beyond its
                                           # interior (1 = the centre line, as estimated; 0.8 measured best)


class ImageInputError(ValueError):
    """The input cannot be turned into a garment image; the message says why, for a person."""


@dataclass
class Preprocessed:
    input: np.ndarray                          # float32 (28, 28) in [0, 1], garment light on black
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (name, float image in [0, 1])
    inverted: bool = False                     # the source was dark on light
    filled: bool = False                       # an outline was filled in
    flat: bool = False                         # a flat shape (drawing, silhouette) was levelled

    def as_uint8(self) -> np.ndarray:
        return np.round(self.input * 255).astype(np.uint8)


# ---- decoding --------------------------------------------------------------------------------
# Formats we do not accept, named by their first bytes so the message can say what the file is.
_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript file"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"icns", "an ICNS icon"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xffO\xffQ", "a JPEG 2000 image"),
    (b"qoif", "a QOI image"),
    (b"DDS ", "a DDS texture"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
)
_ACCEPTED_SIGNATURES = ((b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
                        (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def _describe(data: bytes) -> str:
    """What a file we cannot open seems to be, for the error message."""
    for magic, fmt in _ACCEPTED_SIGNATURES:
        if data.startswith(magic):
            return f"a truncated or damaged {fmt} file"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a truncated or damaged WEBP file"
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            return what
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC/HEIF photo (export it as JPEG)"
        return "an AVIF image" if brand in (b"avif", b"avis") else "a video or HEIF file"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") and b"<svg" in head:
        return "an SVG drawing"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in data[:512]):
        return "text, not an image"
    return "not a recognised image"


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
        what = _describe(data)
        if what.startswith("a truncated"):
            raise ImageInputError(f"{name} is {what}") from None
        raise ImageInputError(f"{name} is {what}; accepted formats are {', '.join(ACCEPTED_FORMATS)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageInputError(f"{name} claims an enormous size and was refused before decoding ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageInputError(f"{name} is truncated or damaged and could not be read ({e})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"{name} claims {w}x{h} pixels (over {MAX_PIXELS:,}); refused before decoding")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{name} is only {w}x{h} pixels; a garment needs at least {MIN_SIDE}x{MIN_SIDE}")
    try:
        img.seek(0)                     # first frame of an animation
        if img.format == "JPEG":
            # Decode big photos at a reduced scale (the DCT does it almost for free).
            img.draft(img.mode, (2 * WORK_SIDE, 2 * WORK_SIDE))
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageInputError(f"{name} is truncated or damaged ({e})") from None
    return img


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any PIL mode -> (RGB float (H, W, 3) in [0, 1], alpha (H, W) in [0, 1] or None).

    Images much larger than the working size are box-reduced first, in PIL, so a big photo never
    becomes a big float array.
    """
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:
        pass                              # a broken EXIF block is not worth refusing the image
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        g = np.clip(a / top, 0, 1)
        f = max(g.shape) // (2 * WORK_SIDE)
        if f > 1:
            g = np.asarray(Image.fromarray(g.astype(np.float32)).reduce(f), dtype=np.float64)
        return np.repeat(g[..., None], 3, axis=2), None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode not in ("RGB", "RGBA", "L"):
        img = img.convert("RGB")           # CMYK, YCbCr, LAB, HSV
    f = max(img.size) // (2 * WORK_SIDE)
    if f > 1:
        img = img.reduce(f)
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


def _background(rgb: np.ndarray, lum: np.ndarray) -> np.ndarray:
    """The background colour: the most common brightness along the border, not the median, so a
    garment that touches much of the border (a tight crop, a Fashion-MNIST image) does not count."""
    width = max(1, min(lum.shape) // 20)
    b_rgb, b_lum = _border(rgb, width), _border(lum, width)
    hist, edges = np.histogram(b_lum, bins=20, range=(0.0, 1.0))
    peak = 0.5 * (edges[hist.argmax()] + edges[hist.argmax() + 1])
    near = np.abs(b_lum - peak) <= 0.1
    return np.median(b_rgb[near], axis=0)


def garment_intensity(rgb: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """Garment-light-on-dark intensity (H, W) in [0, 1]; True where the source was dark on light."""
    lum = rgb @ LUMA
    if alpha is not None:
        # Transparent pixels are background. Strokes' own brightness decides the ground they sit on:
        # light strokes go on black, dark strokes on white, so polarity below comes out right.
        opaque = alpha > 0.5
        stroke_light = opaque.any() and float(np.median(lum[opaque])) > 0.5
        ground = 0.0 if stroke_light else 1.0
        lum = lum * alpha + ground * (1 - alpha)
        rgb = rgb * alpha[..., None] + ground * (1 - alpha[..., None])
    bg_rgb = _background(rgb, lum)
    bg_lum = float(bg_rgb @ LUMA)
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
    ground = border[border < 0.2]          # the border's background pixels, not garment touching it
    if ground.size < 0.2 * border.size:
        ground = border
    noise = float(np.median(np.abs(ground - np.median(ground)))) * 1.4826
    threshold = max(NOISE_FLOOR, float(np.median(ground)) + 4 * noise)
    mask = smooth > threshold
    if min(mask.shape) >= 32:
        mask = ndimage.binary_opening(mask, iterations=1)      # specks of noise
    if not mask.any():
        return np.zeros_like(intensity)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))    # diagonal neighbours connect
    if n > 1:
        # Keep components large enough to be part of the garment (strap, sleeve, sole).
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.05 * sizes.max()))
    # Fashion-MNIST images reach full brightness: the garment's brightest pixels go to 1. (A lower
    # percentile would brighten a Fashion-MNIST image itself.)
    top = float(np.percentile(smooth[mask], TOP_PERCENTILE))
    base = 0.5 * threshold
    return np.where(mask, np.clip((smooth - base) / max(top - base, 1e-3), 0, 1), 0.0)


def level_flat(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """A flat shape (a drawing, a silhouette, an icon: one level, no shading) is set to FLAT_LEVEL
    instead of full white: Fashion-MNIST garments are rarely white throughout, and the classifiers
    read such shapes better (benchmarks/realworld.py)."""
    mask = x > 0
    core = ndimage.binary_erosion(mask, iterations=max(1, min(x.shape) // 100))
    if core.sum() < 10:
        core = mask
    if core.sum() < 10:
        return x, False
    v = x[core]
    level = float(np.median(v))
    if np.mean(np.abs(v - level) < 0.05) < FLAT_SHARE:
        return x, False
    return np.clip(x / level, 0, 1) * FLAT_LEVEL, True


def fill_outline(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """Fill an outline (a sketch) so it reads as a solid garment; solid shapes are unchanged.

    Gaps in the strokes up to about 2 x GAP x the garment's size are bridged first. The shape
    counts as an outline where filling adds a large interior and makes it much thicker than its
    strokes, which a solid garment with a hole (a bag's handle) is not. The filled garment's edge
    is the strokes' centre line, as the person drew it, not their outer side.
    """
    mask = x > 0.2 * float(x.max()) if x.max() > 0 else x > 0
    if not mask.any():
        return x, False
    ys, xs = np.nonzero(mask)
    size = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    r = max(1, round(GAP * size))
    padded = np.pad(mask, r + 1)
    closed = ndimage.binary_closing(padded, iterations=r)[r + 1:-r - 1, r + 1:-r - 1] | mask
    # What the (bridged) strokes enclose, not the concavities the closing smoothed over.
    interior = ndimage.binary_fill_holes(closed) & ~closed
    if interior.sum() < OUTLINE_INTERIOR * mask.sum():
        return x, False
    stroke_depth = float(np.median(ndimage.distance_transform_edt(mask)[mask]))  # a quarter of the width
    filled = mask | interior
    if float(np.median(ndimage.distance_transform_edt(filled)[filled])) < OUTLINE_THICKER * stroke_depth:
        return x, False
    # Grow the interior to the strokes' centre line; lines away from the interior (a strap, a
    # handle drawn as a single line) stay as drawn.
    to_interior = ndimage.distance_transform_edt(~interior)
    half_width = 2 * stroke_depth
    free = mask & (to_interior > 2 * half_width + 1)
    level = float(np.median(x[mask]))
    return np.where(to_interior <= CENTRE_LINE * half_width, level, np.where(free, x, 0.0)), True


def frame(x: np.ndarray, side: int = 28) -> np.ndarray:
    """Crop to the garment, keep its aspect, longest side to `side`, centred the way Fashion-MNIST
    centres its bounding box (an odd margin puts the extra pixel before the garment)."""
    ys, xs = np.nonzero(x > 0)
    if len(ys) == 0:
        raise ImageInputError("no garment found: the picture is blank or one flat colour")
    crop = x[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    h, w = crop.shape
    # A garment already at the frame's size (a 28x28 image, give or take a faint pixel row) is not
    # resampled: stretching 27 pixels to 28 would only blur it.
    scale = 1.0 if side - 1 <= max(h, w) <= side else side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        resample = Image.BOX if scale < 1 else Image.BILINEAR
        crop = np.asarray(Image.fromarray(crop).resize((nw, nh), resample), dtype=np.float32)
    out = np.zeros((side, side), np.float32)
    top, left = (side - nh + 1) // 2, (side - nw + 1) // 2
    out[top:top + nh, left:left + nw] = np.clip(crop, 0, 1)
    return out


# ---- the pipeline ----------------------------------------------------------------------------
def preprocess(image: Image.Image | np.ndarray, plain: bool = False, name: str = "the picture") -> Preprocessed:
    """An image (PIL, or an array (H, W), (H, W, 3) or (H, W, 4) uint8 or float) -> Preprocessed.

    `plain=True` is the baseline: grey, resized to 28x28, nothing else. `name` is used in messages.
    """
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
        if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1:
            raise ImageInputError(f"expected an image array (H, W[, C]); got shape {arr.shape}")
        image = Image.fromarray(arr)
    if min(image.size) < MIN_SIDE:
        raise ImageInputError(f"{name} is only {image.size[0]}x{image.size[1]} pixels; "
                              f"a garment needs at least {MIN_SIDE}x{MIN_SIDE}")
    rgb, alpha = to_rgb_alpha(image)
    steps = [("decoded", rgb if alpha is None else rgb * alpha[..., None])]
    if plain:
        grey = Image.fromarray(np.round(rgb @ LUMA * 255).astype(np.uint8))
        x = np.asarray(grey.resize((28, 28), Image.BILINEAR), dtype=np.float32) / 255.0
        return Preprocessed(x, steps + [("input", x)])
    rgb, alpha = _reduce(rgb, alpha)
    intensity, inverted = garment_intensity(rgb, alpha)
    steps.append(("grey", intensity))
    cleaned = clean(intensity)
    if not (cleaned > 0.05).any() or (cleaned > 0.05).mean() < 0.001:
        raise ImageInputError(f"no garment found in {name}: it is blank or one flat colour")
    steps.append(("cleaned", cleaned))
    levelled, flat = level_flat(cleaned)
    if flat:
        steps.append(("levelled", levelled))
    filled_img, filled = fill_outline(levelled)
    if filled:
        steps.append(("filled", filled_img))
    try:
        x = frame(filled_img)
    except ImageInputError:
        raise ImageInputError(f"no garment found in {name}: it is blank or one flat colour") from None
    steps.append(("input", x))
    return Preprocessed(x, steps, inverted, filled, flat)


def preprocess_bytes(data: bytes, name: str = "the file", plain: bool = False) -> Preprocessed:
    return preprocess(decode_image(data, name), plain=plain, name=name)
