"""Preprocessing: bad input is refused with a clear message; good input of any kind comes out as a
centred (28, 28) garment, light on black, the way Fashion-MNIST shows it."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from fmnist_core.inference import to_model_input
from fmnist_core.preprocess import (FLAT_LEVEL, MAX_FILE_BYTES, ImageInputError, decode_image, preprocess,
                                    preprocess_bytes)

# ---- helpers ---------------------------------------------------------------------------------
BOOT = [(30, 20), (90, 20), (90, 110), (170, 130), (175, 170), (30, 170)]          # asymmetric: toe right
TSHIRT = [(60, 20), (100, 35), (140, 20), (185, 60), (160, 90), (145, 80), (145, 180), (55, 180),
          (55, 80), (40, 90), (15, 60)]


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def garment(shape=BOOT, size=(200, 200), offset=(0, 0), shaded=True, outline: int = 0) -> np.ndarray:
    """A light garment on black (float (H, W) in [0, 1]): a polygon, shaded left to right, or its outline."""
    mask = Image.new("L", size, 0)
    pts = [(x + offset[0], y + offset[1]) for x, y in shape]
    if outline:
        ImageDraw.Draw(mask).line(pts + pts[:1], fill=255, width=outline, joint="curve")
    else:
        ImageDraw.Draw(mask).polygon(pts, fill=255)
    m = np.asarray(mask, dtype=np.float64) / 255
    if shaded:                                   # 0.5 at the garment's left edge to 1.0 at its right
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        m = m * np.clip(0.5 + 0.5 * (np.arange(size[0]) - x0) / (x1 - x0), 0.5, 1.0)[None, :]
    return m


def u8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def run(data: bytes, **kw) -> np.ndarray:
    return preprocess_bytes(data, **kw).input


def close(a: np.ndarray, b: np.ndarray, tol: float = 0.03) -> bool:
    return float(np.abs(a - b).mean()) < tol


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny, valid-looking PNG whose header claims an enormous size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + chunk(b"IEND", b""))


REFERENCE = encode(u8(garment()))                 # the boot, light on black, lossless


# ---- bad input -------------------------------------------------------------------------------
_png = encode(u8(garment()))
_jpg = encode(Image.fromarray(u8(1 - garment())).convert("RGB"), "JPEG", quality=90)
BAD = {
    "empty": (lambda: b"", "empty (0 bytes)"),
    "text": (lambda: b"name,size\nshirt,M\n" * 20, "is text"),
    "svg": (lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="99" height="99">'
            b'<rect width="50" height="80" fill="white"/></svg>', "SVG"),
    "truncated png": (lambda: _png[:len(_png) // 2], "truncated or damaged"),
    "truncated png header": (lambda: _png[:30], "truncated or damaged PNG"),
    "truncated jpeg": (lambda: _jpg[:len(_jpg) // 2], "truncated or damaged"),
    "1x1": (lambda: encode(Image.new("L", (1, 1), 255)), "only 1x1 pixels"),
    "too big": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(MAX_FILE_BYTES + 1), "the limit is 20 MB"),
    "ico": (lambda: encode(Image.fromarray(u8(garment())), "ICO"), "ICO icon"),
    "pdf": (lambda: encode(Image.fromarray(u8(garment())).convert("RGB"), "PDF"), "PDF document"),
    "black canvas": (lambda: encode(Image.new("L", (280, 280), 0)), "no garment found"),
    "white picture": (lambda: encode(Image.new("RGB", (300, 200), "white")), "no garment found"),
    "white jpeg": (lambda: encode(Image.new("RGB", (300, 200), (250, 250, 245)), "JPEG", quality=75),
                   "no garment found"),
    "grey picture": (lambda: encode(Image.new("L", (64, 64), 128)), "no garment found"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_refused_with_a_clear_message(case):
    make, expected = BAD[case]
    with pytest.raises(ImageInputError) as e:
        preprocess_bytes(make(), "upload.png")
    assert expected in str(e.value)
    assert "upload.png" in str(e.value)            # the message names the file


def test_accepted_formats_are_listed_for_unknown_ones():
    with pytest.raises(ImageInputError, match="accepted formats are PNG, JPEG"):
        preprocess_bytes(encode(Image.fromarray(u8(garment())), "ICO"))


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    from PIL import ImageFile
    data = bomb_png()
    assert len(data) < 200
    # "Before decoding": no pixel is ever decoded (PIL decodes in ImageFile.load).
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("the image was decoded"))
    with pytest.raises(ImageInputError, match="refused before decoding"):
        decode_image(data, "huge.png")
    # Under PIL's own bomb limit but over ours: still refused before decoding.
    with pytest.raises(ImageInputError, match="refused before decoding"):
        decode_image(bomb_png(8000, 8000))


def test_tiny_arrays_are_refused():
    with pytest.raises(ImageInputError, match="only 1x1"):
        preprocess(np.zeros((1, 1), np.uint8))


# ---- good input ------------------------------------------------------------------------------
GOOD = {
    "png light on dark": lambda: REFERENCE,
    "jpeg dark on light": lambda: encode(Image.fromarray(u8(1 - garment())).convert("RGB"), "JPEG", quality=75),
    "small 10x10": lambda: encode(u8(garment(size=(200, 200))[::20, ::20])),
    "wide photo": lambda: encode(Image.fromarray(u8(0.9 - 0.8 * garment(size=(900, 400), offset=(600, 150))))
                                 .convert("RGB"), "JPEG"),
    "huge photo": lambda: encode(Image.fromarray(u8(1 - garment(size=(200, 200))))
                                 .resize((3000, 3000), Image.BILINEAR).convert("RGB"), "JPEG", quality=80),
    "bmp": lambda: encode(u8(garment()), "BMP"),
    "webp": lambda: encode(Image.fromarray(u8(garment())).convert("RGB"), "WEBP"),
    "tiff": lambda: encode(u8(garment()), "TIFF"),
    "1-bit": lambda: encode(Image.fromarray(u8(garment(shaded=False))).convert("1")),
}


@pytest.mark.parametrize("case", GOOD)
def test_output_is_28x28_float32_in_unit_range(case):
    pre = preprocess_bytes(GOOD[case]())
    x = pre.input
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.5
    assert pre.steps[0][0] == "decoded" and pre.steps[-1][0] == "input"
    assert to_model_input(x).shape == (1, 1, 28, 28)


def _bbox(x: np.ndarray, thr: float = 0.05) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(x > thr)
    return ys.min(), ys.max(), xs.min(), xs.max()


def test_garment_is_cropped_scaled_and_centred():
    # The boot, small and in a corner of a large canvas, comes out filling and centred in the frame.
    off_centre = garment(size=(640, 480), offset=(420, 280))
    x = run(encode(u8(off_centre)))
    top, bottom, left, right = _bbox(x)
    assert max(bottom - top, right - left) + 1 == 28
    assert abs((top + bottom) / 2 - 13.5) <= 1 and abs((left + right) / 2 - 13.5) <= 1
    assert close(x, run(REFERENCE), 0.04)


def test_dark_on_light_is_inverted():
    light = preprocess_bytes(REFERENCE)
    dark = preprocess_bytes(encode(u8(1 - garment())))
    assert dark.inverted and not light.inverted
    assert close(dark.input, light.input)
    # A tinted, off-white ground counts as light too.
    photo = np.stack([0.95 - 0.85 * garment(), 0.92 - 0.85 * garment(), 0.85 - 0.8 * garment()], axis=2)
    tinted = preprocess_bytes(encode(u8(photo), "JPEG", quality=75))
    assert tinted.inverted
    assert close(tinted.input, light.input, 0.05)


def test_exif_orientation_is_honoured():
    upright = Image.fromarray(u8(1 - garment(size=(240, 200)))).convert("RGB")
    # Stored rotated, with EXIF orientation 6 ("rotate 90 clockwise to display"), as phones do.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = encode(stored, "JPEG", quality=90, exif=exif.tobytes())
    expected = run(encode(upright, "JPEG", quality=90))
    assert close(run(tagged), expected)
    assert not close(run(encode(stored, "JPEG", quality=90)), expected, 0.1)   # the tag mattered


def test_rgba_and_la_are_composited_on_their_alpha():
    g = garment()
    expected = run(REFERENCE)
    alpha = u8(g > 0)
    # White strokes, transparent black ground (a drawing canvas).
    rgba = np.zeros((*g.shape, 4), np.uint8)
    rgba[..., :3] = u8(g)[..., None]
    rgba[..., 3] = alpha
    assert close(run(encode(rgba)), expected)
    # Black strokes on a transparent black ground: invisible without the alpha channel.
    dark = np.zeros((*g.shape, 4), np.uint8)
    dark[..., :3] = u8(1 - g)[..., None] * (g > 0)[..., None]
    dark[..., 3] = alpha
    assert close(run(encode(dark)), expected)
    # Transparent pixels that are white underneath do not hide light strokes.
    ghost = rgba.copy()
    ghost[g == 0, :3] = 255
    assert close(run(encode(ghost)), expected)
    # LA: grey plus alpha.
    la = Image.fromarray(np.stack([u8(g), alpha], axis=2), "LA")
    assert close(run(encode(la)), expected)
    # The app passes its canvas as an RGBA array, not bytes.
    assert close(preprocess(rgba).input, expected)


def test_palette_with_transparency():
    g = garment(shaded=False) > 0
    pal = Image.fromarray(g.astype(np.uint8), "P")
    pal.putpalette([255, 0, 255, 240, 240, 240] + [0] * 762)     # a magenta ground, marked transparent
    data = encode(pal, transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    x = run(data)
    assert close(x, run(encode(u8(g * 1.0))))
    assert x[0, -1] == 0 and x[:5, -5:].max() == 0                # the ground (magenta) is gone


def test_cmyk_matches_rgb():
    g = garment()
    rgb = Image.fromarray(u8(np.stack([0.95 - 0.7 * g, 0.9 - 0.75 * g, 0.8 - 0.5 * g], axis=2)))  # navy on beige
    cmyk = rgb.convert("CMYK")
    assert Image.open(io.BytesIO(encode(cmyk, "JPEG", quality=95))).mode == "CMYK"
    assert close(run(encode(cmyk, "JPEG", quality=95)), run(encode(rgb, "JPEG", quality=95)))
    assert close(run(encode(cmyk, "TIFF")), run(encode(rgb, "PNG")))


def test_16_bit_greyscale_is_scaled_not_clipped():
    g = garment()
    data16 = encode(Image.fromarray(np.round(g * 65535).astype(np.uint16)))
    assert Image.open(io.BytesIO(data16)).mode.startswith("I;16")
    pre = preprocess_bytes(data16)
    assert close(pre.input, run(REFERENCE), 0.01)
    inside = pre.input[pre.input > 0.1]
    assert not pre.flat and inside.std() > 0.05           # the shading survived: not all clipped to white


def test_first_frame_of_an_animated_gif():
    frames = [Image.fromarray(u8(garment())), Image.fromarray(u8(garment(shape=TSHIRT)))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert close(run(data), run(encode(frames[0], "GIF")), 0.01)
    assert not close(run(data), run(encode(frames[1], "GIF")), 0.05)


# ---- sketches --------------------------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("polarity", ["light", "dark"])
def test_outline_is_filled_like_the_solid_shape(polarity):
    solid = preprocess_bytes(encode(u8(garment(shape=TSHIRT, size=(280, 280), offset=(40, 40), shaded=False))))
    drawn = garment(shape=TSHIRT, size=(280, 280), offset=(40, 40), shaded=False, outline=10)
    pre = preprocess_bytes(encode(u8(drawn if polarity == "light" else 1 - drawn)))
    assert pre.filled and pre.flat and pre.inverted == (polarity == "dark")
    assert _iou(pre.input > 0.3, solid.input > 0.3) > 0.8
    assert close(pre.input, solid.input, 0.08)


def test_outline_with_a_gap_is_still_filled():
    drawn = garment(shape=TSHIRT, size=(280, 280), offset=(40, 40), shaded=False, outline=10)
    yy, xx = np.mgrid[:280, :280]
    drawn[(yy - 220) ** 2 + (xx - 140) ** 2 < 5 ** 2] = 0          # a 10 px gap in the hem
    assert preprocess_bytes(encode(u8(drawn))).filled


def test_solid_shapes_and_open_lines_are_not_filled():
    # A bag: a solid body with a handle (a hole that belongs to the garment).
    bag = Image.new("L", (200, 200))
    d = ImageDraw.Draw(bag)
    d.rectangle((30, 80, 170, 180), fill=230)
    d.ellipse((60, 20, 140, 110), outline=230, width=14)
    assert not preprocess_bytes(encode(bag)).filled
    # A single open stroke encloses nothing.
    line = Image.new("L", (200, 200))
    ImageDraw.Draw(line).line([(30, 30), (100, 170), (170, 30)], fill=255, width=10)
    assert not preprocess_bytes(encode(line)).filled
    assert not preprocess_bytes(REFERENCE).filled


def test_flat_shapes_are_levelled_to_a_garment_brightness():
    pre = preprocess_bytes(encode(u8(garment(shaded=False))))
    assert pre.flat
    core = ndimage.binary_erosion(pre.input > 0.05, iterations=2)
    assert abs(float(np.median(pre.input[core])) - FLAT_LEVEL) < 0.02
    assert not preprocess_bytes(REFERENCE).flat                    # shaded garments keep their shading


# ---- Fashion-MNIST itself and a classifier ---------------------------------------------------
def _photo(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """A product photo of a test garment: dark on a tinted light ground, off-centre, noisy JPEG."""
    side = int(rng.integers(150, 260))
    big = np.asarray(Image.fromarray(img).resize((side, side), Image.BICUBIC), dtype=np.float64) / 255
    h, w = int(side * 1.5), int(side * 1.6)
    g = np.zeros((h, w))
    top, left = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    g[top:top + side, left:left + side] = big
    ground = rng.uniform(0.82, 0.96) + rng.uniform(-0.03, 0.03, 3)
    photo = ground * (1 - g[..., None]) + 0.08 * g[..., None] + rng.normal(0, 0.02, (h, w, 3))
    return encode(u8(photo), "JPEG", quality=75)


def test_fashion_mnist_images_pass_nearly_unchanged(fmnist, trained_store, tiny_ids):
    images = fmnist.test_images[:300].numpy()
    ours = np.stack([run(encode(im)) for im in images])
    raw = images.astype(np.float32) / 255
    assert float(np.abs(ours - raw).mean()) < 0.02
    model = trained_store.load_model(tiny_ids["finetune"], "last")
    with torch.inference_mode():
        agree = (model(to_model_input(ours)).argmax(1) == model(to_model_input(raw)).argmax(1)).float().mean()
    assert float(agree) >= 0.97


def test_product_photos_classify_like_the_test_images(fmnist, trained_store, tiny_ids):
    rng = np.random.default_rng(0)
    images, labels = fmnist.test_images[:120].numpy(), fmnist.test_labels[:120].numpy()
    photos = [_photo(im, rng) for im in images]
    model = trained_store.load_model(tiny_ids["finetune"], "last")

    def accuracy(x):
        with torch.inference_mode():
            return float((model(to_model_input(x)).argmax(1).numpy() == labels).mean())

    raw = accuracy(images.astype(np.float32) / 255)
    ours = accuracy(np.stack([run(p) for p in photos]))
    plain = accuracy(np.stack([run(p, plain=True) for p in photos]))
    assert ours >= raw - 0.1
    assert ours >= plain + 0.2
