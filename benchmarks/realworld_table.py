"""Kinds of input x classifiers: the accuracy table for drawn input (docs/drawings.md).

Renders N test garments (chosen with --seed) as every kind of benchmarks/realworld.py, reads each
through the app's preprocessing once, and classifies them with each classifier:

    test          the plain 28x28 test images (no preprocessing)
    photo         product photos
    traced        the garment's contour traced on the canvas (outline_* and filled_*, 8 forms), the
                  kinds the drawing recipe was developed against
    canvas        traced as the app's canvas gives it: rotated, smaller, any stroke width (canvas_*)
    doodles       crude prototypes of each class drawn from memory (doodle_*): HELD OUT of every
                  training decision, reported on their own
    drawings      traced + canvas pooled; outlines / filled: the outline and filled kinds of those

Per kind: accuracy overall and per class. Classifiers are presets (their run in the store: see
fmnist_core.inputs.preset_run) or `label=RUN` pairs; the app's weights (the last epoch's) are used.
The JSON (--json) is what the app reads to choose the classifier for uploads (best on `photo`).

    .venv/bin/python benchmarks/realworld_table.py --n 500 --json benchmarks/results/realworld-table.json \\
        --markdown benchmarks/results/realworld-table.md
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realworld import NEW_VARIANTS, VARIANTS, _inputs, classify, pick, render  # noqa: E402
from fmnist_core import CLASS_NAMES, RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.inputs import preset_run  # noqa: E402

CLASSIFIERS = ("sketch-robust", "reference-scratch", "reference-finetune", "reference-frozen_random",
               "reference-frozen_pretrained", "recipe-scratch")
TRACED = tuple(v for v in VARIANTS if v != "photo")
GROUPS = {
    "photo": ("photo",),
    "traced": TRACED,
    "canvas": ("canvas_outline", "canvas_filled"),
    "drawings": TRACED + ("canvas_outline", "canvas_filled"),
    "outlines": tuple(v for v in TRACED if v.startswith("outline")) + ("canvas_outline",),
    "filled": tuple(v for v in TRACED if v.startswith("filled")) + ("canvas_filled",),
    "doodles": ("doodle_outline", "doodle_filled"),
}
SHOWN = ("test", "photo", "traced", "canvas", "drawings", "outlines", "filled", "doodles")


def _score(right: np.ndarray, labels: np.ndarray) -> dict:
    return {"accuracy": round(float(right.mean()), 4), "n": int(len(right)),
            "per_class": {CLASS_NAMES[c]: round(float(right[labels == c].mean()), 4)
                          for c in range(10) if (labels == c).any()}}


def measure(store: RunStore, classifiers: dict[str, str], n: int, seed: int, progress=print) -> dict:
    """{"classifiers": {label: {kind: score}}, "runs": {label: run id}, ...}; kinds as in SHOWN plus
    every variant."""
    data = load_fashion_mnist()
    idx = pick(n, seed, len(data.test_images))
    images, labels = data.test_images.numpy()[idx], data.test_labels.numpy()[idx]
    models = {label: store.load_model(rid, "last") for label, rid in classifiers.items()}
    right: dict[str, dict[str, np.ndarray]] = {label: {} for label in models}
    for label, m in models.items():
        right[label]["test"] = classify(m, images.astype(np.float32) / 255) == labels
    for variant in VARIANTS + NEW_VARIANTS:
        t0 = time.perf_counter()
        vid = zlib.crc32(variant.encode())            # the same images as realworld.py renders
        blobs = [render(images[k], variant, np.random.default_rng([seed, int(idx[k]), vid]), labels[k])
                 for k in range(len(idx))]
        xs, ok, _ = _inputs(blobs, plain=False)
        for label, m in models.items():
            right[label][variant] = (classify(m, xs) == labels) & ok
        progress(f"{variant}: {time.perf_counter() - t0:.0f} s")
    out: dict = {"classifiers": {}, "runs": dict(classifiers), "n": int(len(idx)), "seed": seed}
    for label, r in right.items():
        row = {kind: _score(r[kind], labels) for kind in ("test", *VARIANTS, *NEW_VARIANTS)}
        for group, kinds in GROUPS.items():
            row[group] = _score(np.concatenate([r[k] for k in kinds]), np.tile(labels, len(kinds)))
        out["classifiers"][label] = row
    return out


def markdown(r: dict) -> str:
    """Two tables: kinds x classifiers, then per class on drawings and on the held-out doodles."""
    labels = list(r["classifiers"])
    lines = ["| input | " + " | ".join(f"`{c}`" for c in labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for kind in SHOWN:
        accs = [r["classifiers"][c][kind]["accuracy"] for c in labels]
        cells = [f"**{a:.3f}**" if a == max(accs) and len(labels) > 1 else f"{a:.3f}" for a in accs]
        held = " (held out)" if kind == "doodles" else ""
        lines.append(f"| {kind}{held} | " + " | ".join(cells) + " |")
    for kind in ("drawings", "doodles"):
        lines += ["", f"Per class, {kind}:", "",
                  "| class | " + " | ".join(f"`{c}`" for c in labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for name in CLASS_NAMES:
            lines.append(f"| {name} | " + " | ".join(
                f"{r['classifiers'][c][kind]['per_class'].get(name, float('nan')):.2f}" for c in labels) + " |")
    return "\n".join(lines)


def _provenance() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = None
    cpu = platform.processor()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"commit": commit, "cpu": cpu, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "command": " ".join(sys.argv)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", default=None, help="run store (default: the shipped checkpoints/ and the user folder)")
    p.add_argument("--classifiers", default=",".join(CLASSIFIERS),
                   help="comma-separated presets or LABEL=RUN pairs (default: %(default)s)")
    p.add_argument("--n", type=int, default=500, help="test garments per kind")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None)
    p.add_argument("--from-json", default=None, help="write the tables of an earlier --json instead of measuring")
    args = p.parse_args(argv)
    if args.from_json:
        r = json.loads(Path(args.from_json).read_text())
        _write(r, args.markdown)
        return 0
    if args.n < 10:
        p.error("--n must be at least 10")
    torch.set_num_threads(1)
    store = RunStore(args.checkpoints)
    chosen, missing = {}, []
    for item in filter(None, args.classifiers.split(",")):
        label, _, ref = item.partition("=")
        try:
            rid = store.resolve(ref) if ref else preset_run(store, label)
        except Exception as e:                   # an unknown preset or run: one line, exit 2
            p.error(f"{item}: {e}")
        (chosen.__setitem__(label, rid) if rid else missing.append(label))
    if missing:
        print(f"not in the store (skipped): {', '.join(missing)}", file=sys.stderr)
    if not chosen:
        p.error("none of the classifiers is in the store")
    r = measure(store, chosen, args.n, args.seed, progress=lambda s: print(s, file=sys.stderr))
    r.update(_provenance(), missing=missing)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    _write(r, args.markdown)
    return 0


def _write(r: dict, path: str | None) -> None:
    text = markdown(r)
    print(text)
    if path:
        head = (f"n = {r['n']} test garments per kind, seed {r['seed']}; commit {r['commit']}, {r['cpu']}, "
                f"{r['date']}.\n\n`{r['command']}`\n\n")
        Path(path).write_text(head + text + "\n")


if __name__ == "__main__":
    sys.exit(main())
