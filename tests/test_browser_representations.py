"""The Representations page in headless Chromium: brushing one aligned map highlights the same images in the other."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from benchmarks.app_server import CHROMIUM, chromium_page, serve_app, wait_until_rendered

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (scripts/test.sh installs it)")

GRAY = np.array([211, 211, 211])        # Vega's "lightgray": the points outside the brush


@pytest.fixture(scope="module")
def server(trained_store):
    old = os.environ.get("FMNIST_REPR_IMAGES")
    os.environ["FMNIST_REPR_IMAGES"] = "300"        # the maps of 300 test images: quick
    try:
        with serve_app(trained_store.root) as url:
            yield url
    finally:
        if old is None:
            os.environ.pop("FMNIST_REPR_IMAGES", None)
        else:
            os.environ["FMNIST_REPR_IMAGES"] = old


def _halves(chart) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB")).astype(int)
    w = img.shape[1] // 2
    return img[:, :w], img[:, w:]


def _gray(part: np.ndarray) -> int:
    return int((np.abs(part - GRAY).sum(-1) <= 6).sum())


def _coloured(part: np.ndarray) -> int:
    return int((part.max(-1) - part.min(-1) > 60).sum())


def _halves_once(page, chart, settled, timeout_s: float = 60.0):
    """The chart's two halves once `settled(left, right)` holds (the chart has redrawn), polled
    every 250 ms; after `timeout_s` the last ones, for the assertions to name what is wrong."""
    for _ in range(int(timeout_s * 4)):
        left, right = _halves(chart)
        if settled(left, right):
            break
        page.wait_for_timeout(250)
    return left, right


def test_brushing_one_map_highlights_the_same_images_in_the_other(server, tiny_ids):
    with chromium_page() as page:
        page.goto(f"{server}/representations?rset={tiny_ids['scratch']},{tiny_ids['finetune']}")
        wait_until_rendered(page, "Representations", timeout_ms=300_000)
        page.get_by_text("Aligned maps", exact=True).click()
        page.get_by_text("Drag a rectangle").wait_for(timeout=300_000)
        page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=300_000)
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.scroll_into_view_if_needed()
        left, right = _halves_once(page, chart, lambda _left, r: _coloured(r) > 200)
        assert _gray(right) < 20 and _coloured(right) > 200            # nothing brushed: every point in colour
        box = chart.bounding_box()
        half = box["width"] / 2
        x0, y0 = box["x"] + 0.2 * half, box["y"] + 0.3 * box["height"]
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x0 + 0.35 * half, y0 + 0.35 * box["height"], steps=12)
        page.mouse.up()
        left_after, right_after = _halves_once(page, chart, lambda _left, r: _gray(r) > 60)
        # The other map now shows the images outside the brush in gray, and the brushed ones still in colour.
        assert _gray(right_after) > 60, _gray(right_after)
        assert 0 < _coloured(right_after) < _coloured(right)
        assert _gray(left_after) > 60
        assert page.locator("[data-testid='stException']").count() == 0
