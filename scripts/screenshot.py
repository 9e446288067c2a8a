"""Take the README's screenshot: the real app, served over the shipped checkpoints, in headless Chromium.

    .venv/bin/python scripts/screenshot.py [--page latent_space] [--out docs/images/latent_space.png]

Needs Debian's chromium (`scripts/setup.sh --dev` installs it). The PNG is reduced to a 256-colour
palette (Pillow) to keep it small.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.app_server import PAGES, RUN_FINISHED, chromium_page, serve_app, wait_until_rendered  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", default="latent_space", choices=[p for p in PAGES if p])
    ap.add_argument("--out", default=None, help="PNG file (default docs/images/PAGE.png)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1400)
    ap.add_argument("--no-chart", dest="chart", action="store_false", help="do not wait for a chart")
    args = ap.parse_args(argv)
    from PIL import Image

    out = Path(args.out) if args.out else ROOT / "docs" / "images" / f"{args.page}.png"
    with serve_app(ROOT / "checkpoints") as url, chromium_page(args.width, args.height) as page:
        page.goto(f"{url}/{args.page}")
        wait_until_rendered(page, PAGES[args.page], timeout_ms=240_000)
        if args.chart:                                  # the page draws its chart after a first run
            page.locator(".vega-embed").first.wait_for(timeout=240_000)
            page.wait_for_function(RUN_FINISHED, timeout=240_000)
        page.wait_for_timeout(2000)                     # let the charts finish drawing
        png = page.screenshot(full_page=False)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f"{out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
