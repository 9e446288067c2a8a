"""A measured real-world test: Fashion-MNIST test garments rendered as product photos and canvas sketches.

Each of N test images (chosen with --seed) is rendered as

    photo               dark garment on a light, tinted background (Fashion-MNIST is a negated product
                        photo), upscaled smoothly to a few hundred pixels, placed off-centre at a random
                        scale on a larger canvas, a mild brightness gradient, Gaussian noise, JPEG q75
    outline_light       the garment's contour traced as an 8-14 px stroke on a 280x280 canvas, white on black
    outline_dark        the same, black on white
    outline_rgba_dark   the same, black strokes on a transparent ground (RGBA PNG, transparent RGB = 0:
                        invisible to anything that drops the alpha channel)
    outline_rgba_light  the same, white strokes on a transparent ground (what the app's canvas returns)
    filled_*            the garment's silhouette filled in, in the same four forms

(sketches get a slight hand-drawn wobble; a quarter of the outlines are left open by a 6-24 px
gap), encoded to bytes (JPEG / PNG) and read back through `preprocess_bytes`, once with our
preprocessing and once with the plain baseline (grey + resize to 28x28). The `finetune` classifier's
accuracy on each is reported next to its accuracy on the raw 28x28 test images, on those images
pushed through our preprocessing (which should cost next to nothing), and on each garment's own
silhouette drawn straight at 28x28 (a ceiling for sketches, which carry no shading).

    .venv/bin/python benchmarks/realworld.py [--checkpoints DIR] [--run ID] [--which last|best] [--n 500] [--seed 0] [--json OUT]
                                             [--samples OUT.png]

Everything is deterministic for a given seed: image i of variant v is drawn from its own generator
seeded by (seed, test index, crc32(v)), so a larger --n keeps the first images the same.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import CLASS_NAMES, RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.inference import to_model_input  # noqa: E402
from fmnist_core.presets import reference_runs  # noqa: E402
from fmnist_core.preprocess import FLAT_LEVEL, ImageInputError, preprocess_bytes  # noqa: E402
from benchmarks.doodles import KINDS as DOODLES, render_doodle  # noqa: E402

# Kinds added with sketch-robust (docs/drawings.md): `canvas_*`, test garments traced as the app's
# canvas gives them (white on transparent or black, rotated up to ±15°, smaller, strokes 5-26 px);
# `doodle_*`, crude prototypes of each class drawn from memory (benchmarks/doodles.py), held out of
# every training decision. realworld_table.py measures every kind with several classifiers.
NEW_VARIANTS = ("canvas_outline", "canvas_filled", *DOODLES)
VARIANTS = ("photo", "outline_light", "outline_dark", "outline_rgba_dark", "outline_rgba_light",
            "filled_light", "filled_dark", "filled_rgba_dark", "filled_rgba_light")
CANVAS = 280


# ---- rendering -------------------------------------------------------------------------------
def _resize(x: np.ndarray, size: tuple[int, int], resample=Image.BICUBIC) -> np.ndarray:
    """Float image in [0, 1] -> (h, w) = size, smooth interpolation, float in [0, 1]."""
    im = Image.fromarray(x.astype(np.float32))
    return np.clip(np.asarray(im.resize((size[1], size[0]), resample), dtype=np.float64), 0, 1)


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def render_photo(img: np.ndarray, rng: np.random.Generator) -> bytes:
    """A product photo: the garment dark on a light tinted ground, off-centre, noisy, JPEG q75."""
    x = img.astype(np.float64) / 255.0
    side = int(rng.integers(200, 360))
    big = _resize(x, (side, side))
    H = int(side * rng.uniform(1.15, 1.8))
    W = int(side * rng.uniform(1.15, 1.8))
    top, left = int(rng.integers(0, H - side + 1)), int(rng.integers(0, W - side + 1))
    g = np.zeros((H, W))
    g[top:top + side, left:left + side] = big
    bg = rng.uniform(0.80, 0.97) + rng.uniform(-0.04, 0.04, 3)         # light, slightly tinted
    fg = rng.uniform(0.0, 0.15) + rng.uniform(-0.03, 0.03, 3)          # dark garment
    photo = bg * (1 - g[..., None]) + fg * g[..., None]
    # Mild lighting gradient along a random direction.
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:H, 0:W]
    ramp = ((xx / W - 0.5) * np.cos(angle) + (yy / H - 0.5) * np.sin(angle))
    photo = photo * (1 + rng.uniform(0.0, 0.15) * ramp)[..., None]
    photo = photo + rng.normal(0, rng.uniform(0.01, 0.03), photo.shape)
    arr = np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8)
    return _encode(arr, "JPEG", quality=75)


def _silhouette(img: np.ndarray, rng: np.random.Generator, rotate: float = 0.0) -> np.ndarray:
    """The garment's shape as a user would draw it: signed distance (px) to its contour on the
    canvas, positive inside; random size and position, a slight hand-drawn wobble; turned by up to
    ±`rotate` degrees (smaller, to fit) where asked."""
    x = img.astype(np.float64) / 255.0
    side = int(CANVAS * (rng.uniform(0.45, 0.72) if rotate else rng.uniform(0.55, 0.9)))
    big = _resize(x, (side, side), Image.BILINEAR)
    mask = big > 0.1
    # What a person traces: the garment's outline, not its texture. Drop specks, fill small holes
    # (dark patches of the print) but keep big ones (a bag's handle).
    mask = ndimage.binary_opening(mask, iterations=2)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, np.arange(1, n + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.05 * sizes.max()))
    holes = ndimage.binary_fill_holes(mask) & ~mask
    hl, hn = ndimage.label(holes)
    if hn:
        hsizes = ndimage.sum(holes, hl, np.arange(1, hn + 1))
        mask = mask | np.isin(hl, 1 + np.flatnonzero(hsizes < 0.02 * side * side))
    if rotate:
        mask = ndimage.rotate(mask.astype(np.float64), rng.uniform(-rotate, rotate), reshape=True, order=1) > 0.5
    canvas = np.zeros((CANVAS, CANVAS), bool)
    h, w = mask.shape
    top, left = int(rng.integers(0, CANVAS - h + 1)), int(rng.integers(0, CANVAS - w + 1))
    canvas[top:top + h, left:left + w] = mask
    # Wobble: a smooth random displacement of a few pixels.
    amp = rng.uniform(1.0, 4.0)
    dy = ndimage.gaussian_filter(rng.normal(0, 1, (CANVAS, CANVAS)), 25)
    dx = ndimage.gaussian_filter(rng.normal(0, 1, (CANVAS, CANVAS)), 25)
    dy *= amp / (np.abs(dy).max() + 1e-9)
    dx *= amp / (np.abs(dx).max() + 1e-9)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float64)
    warped = ndimage.map_coordinates(canvas.astype(np.float64), [yy + dy, xx + dx], order=1) > 0.5
    inside = ndimage.distance_transform_edt(warped)
    outside = ndimage.distance_transform_edt(~warped)
    return inside - outside


def render_sketch(img: np.ndarray, rng: np.random.Generator, kind: str, polarity: str, rotate: float = 0.0,
                  widths: tuple[float, float] = (8, 14)) -> bytes:
    """A canvas drawing (280x280 PNG): kind outline|filled, polarity light|dark|rgba_dark|rgba_light."""
    sd = _silhouette(img, rng, rotate)
    width = rng.uniform(*widths)
    if kind == "filled":
        cover = np.clip(sd + 0.5, 0, 1)                               # anti-aliased silhouette
    else:
        cover = np.clip(width / 2 + 0.5 - np.abs(sd), 0, 1)            # stroke along the contour
        if rng.random() < 0.25:                                        # the stroke was not closed
            ys, xs = np.nonzero(cover > 0.5)
            k = int(rng.integers(len(ys)))
            gap = rng.uniform(3, 12)                                  # ends 6-24 px apart
            yy, xx = np.mgrid[0:CANVAS, 0:CANVAS]
            cover = np.where((yy - ys[k]) ** 2 + (xx - xs[k]) ** 2 < gap ** 2, 0.0, cover)
    c = np.round(cover * 255).astype(np.uint8)
    if polarity == "light":
        return _encode(c, "PNG")
    if polarity == "dark":
        return _encode(255 - c, "PNG")
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)                     # transparent black ground
    rgba[..., 3] = c
    if polarity == "rgba_light":
        rgba[c > 0, :3] = 255                                          # white strokes
    return _encode(rgba, "PNG")


def render(img: np.ndarray, variant: str, rng: np.random.Generator, label: int | None = None) -> bytes:
    if variant == "photo":
        return render_photo(img, rng)
    if variant.startswith("doodle_"):                  # the class only: nothing traced from `img`
        return render_doodle(int(label), variant, rng)
    if variant.startswith("canvas_"):                  # as the app's canvas gives it: white on transparent
        polarity = "rgba_light" if rng.random() < 0.5 else "light"      # or on black, any stroke width
        return render_sketch(img, rng, variant.split("_")[1], polarity, rotate=15.0, widths=(5, 26))
    kind, polarity = variant.split("_", 1)
    return render_sketch(img, rng, kind, polarity)


# ---- measuring -------------------------------------------------------------------------------
@torch.inference_mode()
def classify(model: torch.nn.Module, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Predicted class indices for (N, 28, 28) float images in [0, 1]."""
    pixel_range = model.spec.input_range
    out = [model(to_model_input(images[i:i + batch], pixel_range)).argmax(1).numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _inputs(blobs: list[bytes], plain: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """Preprocess each blob: (inputs (N, 28, 28), ok mask (N,), seconds per image)."""
    xs = np.zeros((len(blobs), 28, 28), np.float32)
    ok = np.ones(len(blobs), bool)
    t0 = time.perf_counter()
    for i, b in enumerate(blobs):
        try:
            xs[i] = preprocess_bytes(b, plain=plain).input
        except ImageInputError:
            ok[i] = False
    return xs, ok, (time.perf_counter() - t0) / max(1, len(blobs))


def _score(pred: np.ndarray, ok: np.ndarray, labels: np.ndarray) -> dict:
    right = (pred == labels) & ok
    per_class = {CLASS_NAMES[c]: round(float(right[labels == c].mean()), 4)
                 for c in range(10) if (labels == c).any()}
    return {"accuracy": round(float(right.mean()), 4), "refused": int((~ok).sum()), "per_class": per_class}


def pick(n: int, seed: int, total: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))


def run(checkpoints: str | None, n: int = 500, seed: int = 0, which: str = "last",
        variants: tuple[str, ...] = VARIANTS, keep_samples: int = 0, run_ref: str | None = None) -> dict:
    """Render, preprocess both ways and classify with one classifier run (default: the reference
    `finetune`); returns the results (and sample images if asked)."""
    store = RunStore(checkpoints)
    run_id = store.resolve(run_ref) if run_ref else reference_runs(store)["finetune"]
    model = store.load_model(run_id, which)
    data = load_fashion_mnist()
    idx = pick(n, seed, len(data.test_images))
    images = data.test_images.numpy()[idx]
    labels = data.test_labels.numpy()[idx]

    manifest = store.manifest(run_id) or {}
    results: dict = {
        "checkpoints": str(store.root), "run": run_id, "which": which, "n": int(len(idx)), "seed": seed,
        "epochs": len(manifest.get("history", [])), "variants": {},
    }
    samples: dict[str, list] = {}
    # The plain 28x28 test images, raw and through our preprocessing.
    raw = images.astype(np.float32) / 255.0
    results["test_raw"] = _score(classify(model, raw), np.ones(len(idx), bool), labels)
    blobs = [_encode(im, "PNG") for im in images]
    xs, ok, sec = _inputs(blobs, plain=False)
    pred = classify(model, xs)
    results["test_ours"] = {**_score(pred, ok, labels), "ms_per_image": round(sec * 1000, 2),
                            "changed_predictions": int((pred != classify(model, raw)).sum()),
                            "mean_abs_pixel_change": round(float(np.abs(xs - raw)[ok].mean()), 4)}
    # The ceiling for sketches: each garment's own silhouette drawn straight at 28x28 (no rendering,
    # no preprocessing), at the level our preprocessing gives flat shapes.
    sil = np.stack([ndimage.binary_fill_holes(im > 25) for im in images]).astype(np.float32) * FLAT_LEVEL
    results["silhouette_28"] = _score(classify(model, sil), np.ones(len(idx), bool), labels)
    for variant in variants:
        vid = zlib.crc32(variant.encode())             # a variant's images do not depend on the others
        blobs = [render(images[k], variant, np.random.default_rng([seed, int(idx[k]), vid]), labels[k])
                 for k in range(len(idx))]
        row = {}
        for mode, plain in (("ours", False), ("plain", True)):
            xs, ok, sec = _inputs(blobs, plain)
            row[mode] = {**_score(classify(model, xs), ok, labels), "ms_per_image": round(sec * 1000, 2)}
            if keep_samples:
                samples.setdefault(variant, []).append(xs[:keep_samples])
        if keep_samples:
            samples[variant].insert(0, [Image.open(io.BytesIO(b)) for b in blobs[:keep_samples]])
        row["bytes_mean"] = int(np.mean([len(b) for b in blobs]))
        results["variants"][variant] = row
    if keep_samples:
        results["_samples"] = samples
    return results


def summary_table(r: dict) -> str:
    """The results as a text table: accuracy with our preprocessing and with the plain baseline."""
    def row(name, ours, plain, refused="", ms=""):
        def f(v):
            return f"{v:.3f}" if isinstance(v, float) else v
        return f"{name:<20} {f(ours):>7} {f(plain):>7} {refused:>8} {ms:>7}"
    t = r["test_ours"]
    lines = [f"{r.get('run', 'finetune')} ({r['checkpoints']}, {r['which']} of {r['epochs']} epochs), "
             f"n={r['n']}, seed={r['seed']}",
             row("input", "ours", "plain", "refused", "ms/img"),
             row("test images 28x28", t["accuracy"], r["test_raw"]["accuracy"], str(t["refused"]),
                 f"{t['ms_per_image']:.1f}")]
    for v, x in r["variants"].items():
        lines.append(row(v, x["ours"]["accuracy"], x["plain"]["accuracy"], str(x["ours"]["refused"]),
                         f"{x['ours']['ms_per_image']:.1f}"))
    for kind in ("outline", "filled"):
        rows = [x for v, x in r["variants"].items() if v.startswith(kind)]
        if len(rows) > 1:        # the forms differ only in colours, so their mean is the steadier number
            lines.append(row(f"{kind} (mean of {len(rows)})", float(np.mean([x["ours"]["accuracy"] for x in rows])),
                             float(np.mean([x["plain"]["accuracy"] for x in rows]))))
    lines.append(row("silhouette at 28x28", "", r["silhouette_28"]["accuracy"]) +
                 "  (each garment's own filled silhouette: a ceiling for sketches)")
    lines.append(f"test images through ours: {t['changed_predictions']} of {r['n']} predictions change, "
                 f"mean pixel change {t['mean_abs_pixel_change']:.3f}")
    return "\n".join(lines)


def sample_sheet(samples: dict) -> Image.Image:
    """One row per variant: the rendered source, our 28x28 input, the plain one (for eyeballing)."""
    cell = 84
    rows = []
    for variant, (srcs, ours, plain) in samples.items():
        row = Image.new("RGB", (cell * 3 * len(srcs), cell), (128, 128, 128))
        for j, src in enumerate(srcs):
            s = src.convert("RGBA")
            flat = Image.new("RGBA", s.size, (200, 60, 200, 255))   # magenta shows transparency
            flat.alpha_composite(s)
            row.paste(flat.convert("RGB").resize((cell, cell)), (cell * 3 * j, 0))
            for k, x in enumerate((ours[j], plain[j])):
                im = Image.fromarray(np.round(x * 255).astype(np.uint8)).resize((cell, cell), Image.NEAREST)
                row.paste(im.convert("RGB"), (cell * (3 * j + 1 + k), 0))
        rows.append(row)
    sheet = Image.new("RGB", (rows[0].width, cell * len(rows)))
    for i, row in enumerate(rows):
        sheet.paste(row, (0, cell * i))
    return sheet


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the shipped checkpoints/)")
    p.add_argument("--run", default=None, help="a classifier run id, prefix or name (default: the reference finetune)")
    p.add_argument("--which", choices=("last", "best"), default="last")
    p.add_argument("--n", type=int, default=500, help="test images rendered per variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--json", default=None, help="write the results here as JSON")
    p.add_argument("--samples", default=None, help="write a PNG sheet of the first few renders and inputs")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be at least 1")
    torch.set_num_threads(1)
    variants = tuple(args.variants.split(","))
    unknown = set(variants) - set(VARIANTS + NEW_VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {','.join(VARIANTS + NEW_VARIANTS)}")
    r = run(args.checkpoints, args.n, args.seed, args.which, variants, keep_samples=8 if args.samples else 0,
            run_ref=args.run)
    samples = r.pop("_samples", None)
    print(summary_table(r))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    if args.samples and samples:
        Path(args.samples).parent.mkdir(parents=True, exist_ok=True)
        sample_sheet(samples).save(args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
