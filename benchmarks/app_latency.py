"""App latency: a sketch classified by all four models, and each page's render after a first visit.

    .venv/bin/python benchmarks/app_latency.py [--checkpoints DIR] [--no-pages]

Sketch: a 280x280 RGBA canvas drawing (as the canvas component returns it) through preprocessing
and the four classifiers, median of 30 runs. Pages: the real server in headless Chromium
(Debian's chromium); each page is opened once to warm the caches, then opened again and timed
until its title is shown and Streamlit reports the run finished.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_core import RunStore  # noqa: E402
from fmnist_core.inference import Predictor  # noqa: E402
from fmnist_core.preprocess import preprocess  # noqa: E402
from benchmarks.app_server import PAGES, chromium_page, serve_app, wait_until_rendered  # noqa: E402


def sketch() -> np.ndarray:
    """A T-shirt outline drawn with 14-px white strokes on a transparent 280x280 canvas."""
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    pts = [(90, 40), (190, 40), (250, 90), (220, 120), (200, 105), (200, 240), (80, 240), (80, 105),
           (60, 120), (30, 90), (90, 40)]
    d.line(pts, fill=(255, 255, 255, 255), width=14, joint="curve")
    return np.asarray(im)


def sketch_latency(store: RunStore, runs: int = 30) -> dict:
    import torch
    torch.set_num_threads(1)          # as fmnist_app.cache does for the app's process
    predictor = Predictor.from_store(store)
    img = sketch()
    times = []
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        pre = preprocess(img)
        predictor.predict_proba(pre.input[None])
        times.append(time.perf_counter() - t0)
    times = np.array(times[3:]) * 1000
    return {"sketch_ms_median": round(float(np.median(times)), 1), "sketch_ms_p90": round(float(np.percentile(times, 90)), 1)}


def page_latency(checkpoints: str | None) -> dict:
    out = {}
    with serve_app(checkpoints, start_timeout_s=120) as url, chromium_page() as page:
        for visit in ("first", "again"):
            for path, title in PAGES.items():
                t0 = time.perf_counter()
                page.goto(f"{url}/{path}")
                wait_until_rendered(page, title, timeout_ms=180_000)
                out.setdefault(path or "overview", {})[visit] = round(time.perf_counter() - t0, 2)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--no-pages", action="store_true")
    args = ap.parse_args()
    store = RunStore(args.checkpoints)
    result = sketch_latency(store)
    if not args.no_pages:
        result["page_seconds"] = page_latency(args.checkpoints)
    print(json.dumps(result, indent=1))
