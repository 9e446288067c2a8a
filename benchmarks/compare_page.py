"""How fast the Compare page renders: over the shipped runs, and over a store of N generated runs.

    .venv/bin/python benchmarks/compare_page.py [--runs 200] [--checkpoints DIR] [--browser] [--screenshot DIR] [--out FILE]

Server side (AppTest, the page's whole script run): the first visit, then a later one. With
--browser, the real server in headless Chromium (Debian's chromium): from a click or a page load
until the page's charts are drawn and Streamlit reports the run finished, on the first visit and on
later ones, both through the sidebar and by reloading (see browser_seconds). The
generated runs are manifests with 50-epoch histories (no weights: the page reads none), a grid of
seed × batch size × dropout × lr around the reference `scratch` run. --screenshot saves the page
at the default width (1400 px window). Writes benchmarks/results/compare-page.json by default.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_core.presets import reference_specs  # noqa: E402
from fmnist_core.runs import DEFAULT_DIR, FORMAT_VERSION, MANIFEST  # noqa: E402
from fmnist_core.store import atomic_write  # noqa: E402
from benchmarks.app_server import wait_until_rendered  # noqa: E402

# The last field varies fastest: the first 10 runs already differ in lr and dropout.
GRID = {"seed": [0, 1, 2, 3, 4], "batch_size": [100, 50], "encoder.dropout": [0.0, 0.1, 0.2, 0.3],
        "optimizer.lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]}


def synthetic_store(root: str | os.PathLike, runs: int = 200, epochs: int = 50) -> list[str]:
    """Write `runs` complete classifier runs (manifests only) into `root`; returns their ids."""
    import random
    base = reference_specs({"epochs": epochs})["scratch"]
    ids = []
    for i, values in enumerate(itertools.islice(itertools.product(*GRID.values()), runs)):
        overrides = dict(zip(GRID, values))
        spec = base.with_overrides(overrides)
        rng = random.Random(i)
        lr, p = overrides["optimizer.lr"], overrides["encoder.dropout"]
        ceiling = 0.93 - 0.02 * abs(math.log10(lr) + 3) - 0.01 * abs(p - 0.2) + rng.uniform(-0.004, 0.004)
        history = []
        for e in range(1, epochs + 1):
            val = ceiling - 0.08 * math.exp(-e / 6) + rng.uniform(-0.003, 0.003)
            train = min(0.999, val + 0.002 * e * (1.2 - p))
            history.append({"epoch": e, "train_loss": 1 - train, "val_loss": 1 - val + 0.002 * e * (0.3 - p),
                            "test_loss": 1 - val, "train_acc": train, "val_acc": val, "test_acc": val - 0.002,
                            "seconds": 18.0, "train_images_per_s": 2800.0, "eval_images_per_s": 8000.0})
        best = max(range(epochs), key=lambda k: history[k]["val_acc"]) + 1
        manifest = {"format_version": FORMAT_VERSION, "id": spec.run_id, "name": spec.name, "kind": spec.kind,
                    "spec": spec.to_dict(), "history": history, "best_epoch": best, "complete": True,
                    "data_fingerprint": "synthetic", "optimizer": None, "roles": {}, "files": {},
                    "provenance": {"command": "benchmarks/compare_page.py", "wall_time_s": 18.0 * epochs}}
        atomic_write(Path(root) / spec.run_id / MANIFEST, json.dumps(manifest).encode())
        ids.append(spec.run_id)
    return ids


def apptest_seconds(checkpoints: str | os.PathLike, visits: int = 3) -> dict:
    """Seconds of the page's script run under AppTest: the first visit and the later ones (max)."""
    os.environ["FMNIST_CHECKPOINTS"] = str(checkpoints)
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    times = []
    for _ in range(visits):
        t0 = time.perf_counter()
        at.switch_page("pages/compare.py")
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
        at.switch_page("pages/overview.py")
        at.run()
    return {"first": round(times[0], 2), "later_max": round(max(times[1:]), 2)}


def _drawn(page, t0: float) -> float:
    """Seconds since t0 until the Compare page's title and first chart are drawn and its run finished."""
    wait_until_rendered(page, "Compare runs", timeout_ms=180_000)
    page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for(timeout=60_000)
    return round(time.perf_counter() - t0, 2)


def browser_seconds(checkpoints: str | os.PathLike, screenshot: Path | None = None, visits: int = 5) -> dict:
    """Seconds until the page's title and chart are drawn and its run is finished, in Chromium:

    - `first`: the server's first visit to the page (it reads every run);
    - `navigate`: later visits as a user makes them, from the Overview through the sidebar (median, max);
    - `reload`: later visits that load the whole app again (a typed URL, F5): Streamlit's own start-up
      in the browser is part of it, so the Overview's reload is given beside it.
    """
    from benchmarks.app_server import chromium_page, serve_app
    out = {}
    nav = "[data-testid='stSidebarNav'] a[href$='{}']"
    # A tall window for the screenshot: Streamlit scrolls inside its own container, not the page.
    with serve_app(checkpoints, start_timeout_s=120) as url, chromium_page(height=3000 if screenshot else 1000) as page:
        page.goto(f"{url}/")                                # the server's first page pays for torch and the data
        wait_until_rendered(page, "Fashion-MNIST representation explorer", timeout_ms=180_000)
        t0 = time.perf_counter()
        page.goto(f"{url}/compare")
        out["first"] = _drawn(page, t0)
        navigate, reload, overview = [], [], []
        for _ in range(visits):
            page.locator(nav.format("/")).first.click()
            wait_until_rendered(page, "Fashion-MNIST representation explorer")
            t0 = time.perf_counter()
            page.locator(nav.format("/compare")).first.click()
            navigate.append(_drawn(page, t0))
            t0 = time.perf_counter()
            page.reload()
            reload.append(_drawn(page, t0))
            t0 = time.perf_counter()
            page.goto(f"{url}/")
            wait_until_rendered(page, "Fashion-MNIST representation explorer")
            overview.append(round(time.perf_counter() - t0, 2))
        for name, times in (("navigate", navigate), ("reload", reload), ("overview_reload", overview)):
            out[name] = {"median": statistics.median(times), "max": max(times), "all": times}
        if screenshot is not None:
            page.locator(nav.format("/compare")).first.click()
            _drawn(page, time.perf_counter())
            page.wait_for_timeout(1500)
            page.screenshot(path=str(screenshot))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--checkpoints", type=Path, default=DEFAULT_DIR, help="the shipped store (default checkpoints/)")
    ap.add_argument("--browser", action="store_true")
    ap.add_argument("--screenshot", type=Path, default=None, help="a folder for compare-*.png")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare-page.json")
    args = ap.parse_args()
    result = {"cpu": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "command": "benchmarks/compare_page.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_store(tmp, args.runs)
        for name, root in (("shipped", args.checkpoints), (f"generated_{args.runs}", Path(tmp))):
            result[name] = {"apptest_s": apptest_seconds(root)}
            if args.browser or args.screenshot:
                shot = args.screenshot / f"compare-{name}.png" if args.screenshot else None
                result[name]["browser_s"] = browser_seconds(root, shot)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
