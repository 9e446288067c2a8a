"""End to end: the real server in headless Chromium (Debian's `chromium`), every page, and an upload."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.app_server import CHROMIUM, PAGES, RUN_FINISHED, chromium_page, serve_app, wait_until_rendered

IDLE = RUN_FINISHED + " && !document.querySelector('[data-stale=\"true\"]')"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (scripts/test.sh installs it)")

# A deep link first: on a fresh server it must still go through the router (fmnist_app.routing.use_the_router),
# keep its query parameters and show the router's run picker.
DEEP_LINK_FIRST = ["confusion"] + [path for path in PAGES if path != "confusion"]


@pytest.fixture(scope="module")
def server(trained_store):
    with serve_app(trained_store.root) as url:
        yield url


@pytest.fixture(scope="module")
def deep_link_checked(server, tiny_ids):
    """The very first request of the server: a deep link with a run choice in its URL."""
    chosen = f"{tiny_ids['scratch']},{tiny_ids['finetune']}"
    with chromium_page() as pg:
        pg.goto(f"{server}/confusion?runs={chosen}")
        wait_until_rendered(pg, PAGES["confusion"], timeout_ms=180_000)
        assert pg.url.startswith(f"{server}/confusion?runs="), pg.url
        assert tiny_ids["scratch"] in pg.url and tiny_ids["finetune"] in pg.url and "frozen" not in pg.url
        pg.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").wait_for(timeout=10_000)
        pg.locator("[data-testid='stVegaLiteChart']").nth(1).wait_for(timeout=30_000)
        assert pg.locator("[data-testid='stVegaLiteChart']").count() == 2
        assert pg.locator("[data-testid='stException']").count() == 0
    return True


@pytest.fixture(scope="module")
def page(server, deep_link_checked):
    with chromium_page() as pg:
        yield pg


def test_every_page_renders_its_main_element(server, page):
    for path in DEEP_LINK_FIRST:
        page.goto(f"{server}/{path}")
        wait_until_rendered(page, PAGES[path], timeout_ms=180_000 if path == "latent_space" else 90_000)
        assert page.locator("[data-testid='stException']").count() == 0, path
        # The router's navigation (titles, not the pages/ folder's file names) and no widget warnings.
        page.locator("[data-testid='stSidebarNav']").get_by_text("Latent space").wait_for(timeout=10_000)
        assert page.locator("[data-testid='stSidebarNav']").get_by_text("latent space", exact=True).count() == 0
        if path in ("training", "confusion", "latent_space"):
            page.locator("[data-testid='stVegaLiteChart'], .vega-embed").first.wait_for(timeout=90_000)


def test_an_upload_goes_to_the_best_on_photos_or_to_the_four(server, page, fmnist, tmp_path, trained_store):
    """Uploads go to the benchmark's best on photos where the store has it (the reference four one
    toggle away), else to the sidebar's four with a note saying why."""
    from fmnist_core.inputs import benchmark_table, for_uploads
    choice = for_uploads(trained_store, benchmark_table())
    img = tmp_path / "shoe.png"
    # A dark sneaker on a light background, as a shop photo would be.
    Image.fromarray(255 - np.kron(fmnist.test_images[9].numpy(), np.ones((6, 6), np.uint8))).save(img)
    page.goto(f"{server}/classify")
    page.get_by_role("tab", name="Upload").click()
    page.locator("input[type=file]").set_input_files(str(img))
    if choice.run_id is not None:
        page.get_by_text("One classifier", exact=True).wait_for(timeout=90_000)
        assert page.locator("[data-testid='stMetric']").count() == 1
        assert page.get_by_text("Uploads are read by").count() == 1
        page.get_by_text("compare with the classifiers chosen in the sidebar").click()
        page.locator("[data-testid='stMetric']").nth(3).wait_for(timeout=90_000)
    else:
        page.get_by_text("Showing the classifiers chosen in the sidebar").wait_for(timeout=90_000)
    page.get_by_text("Four classifiers" if choice.label.startswith("reference-") or choice.run_id is None
                     else "5 classifiers", exact=True).wait_for(timeout=90_000)
    for name in ("scratch", "finetune", "frozen_random", "frozen_pretrained"):
        page.locator("[data-testid='stMetric']", has_text=name).first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=os.environ.get("FMNIST_SCREENSHOT", str(tmp_path / "classify.png")), full_page=True)


def _wait_idle(page) -> None:
    """Until the script run has finished: no status widget, and no element left stale (greyed) from
    the run before, which Streamlit marks with data-stale while a run is going."""
    page.wait_for_function(IDLE, timeout=90_000)


def _click_mark(page, mark) -> None:
    """Click the centre of a chart mark (Vega's SVG renderer labels each mark with its fields).

    A mouse click at its position, as a user would make: on the map a Voronoi layer lies on top.
    """
    mark.wait_for(timeout=90_000)
    mark.scroll_into_view_if_needed()
    box = mark.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_confusion_cell_click_shows_its_images(server, page):
    page.goto(f"{server}/confusion")
    page.get_by_text("Images behind a cell").wait_for(timeout=90_000)
    _wait_idle(page)
    assert page.get_by_text("of class Shirt predicted as T-shirt/top by scratch").count() == 1   # the default
    finetune = page.locator("[data-testid='stVegaLiteChart']", has_text="finetune: accuracy")
    _click_mark(page, finetune.locator('path[aria-label^="predicted: Pullover; true: Coat;"]'))
    page.get_by_text("of class Coat predicted as Pullover by finetune").wait_for(timeout=60_000)
    _wait_idle(page)
    scratch = page.locator("[data-testid='stVegaLiteChart']", has_text="scratch: accuracy")
    _click_mark(page, scratch.locator('path[aria-label^="predicted: Trouser; true: Trouser;"]'))
    page.get_by_text("of class Trouser predicted as Trouser by scratch").wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0


def _tooltip(page, x: float, y: float) -> dict:
    """Hover a point of the page; Vega's tooltip as {field: value} ({} if none shows)."""
    page.mouse.move(x, y)
    tip = page.locator("#vg-tooltip-element.visible")
    try:
        tip.wait_for(timeout=3000)
    except Exception:
        return {}
    lines = [line.strip() for line in tip.inner_text().splitlines() if line.strip()]
    return dict(zip(lines[::2], lines[1::2]))


def test_map_clicks_pick_both_garments(server, page):
    page.goto(f"{server}/latent_space")
    page.get_by_text("Decoded frames along").wait_for(timeout=90_000)
    _wait_idle(page)
    # The map is drawn on a canvas (too many points for SVG): hover to learn which garment lies
    # nearest (nearest=True shows it), click there, and that garment becomes A, then B.
    for slot, (fx, fy) in (("A", (0.3, 0.5)), ("B", (0.75, 0.4))):
        canvas = page.locator("[data-testid='stVegaLiteChart'] canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        index = _tooltip(page, x, y).get("index")
        assert index is not None, f"no tooltip at {fx}, {fy} of the map"
        page.mouse.click(x, y)
        page.wait_for_function(
            f"document.querySelector('input[aria-label=\"garment {slot} (test index)\"]').value == '{index}'",
            timeout=60_000)
        _wait_idle(page)
    assert page.get_by_label("garment A (test index)").input_value() != page.get_by_label("garment B (test index)").input_value()
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_sketch_drawn_on_the_canvas_is_classified_by_all_four(server, page):
    page.goto(f"{server}/classify")
    page.get_by_text("Draw something or upload").wait_for(timeout=90_000)
    # The canvas component lives in a shadow root (Playwright's locators pierce it); its top canvas
    # takes the strokes. Draw a pair of trousers with the mouse, as a user would.
    canvas = page.locator("[data-testid='stBidiComponentIsolated'] canvas").last
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 40)
    page.mouse.down()
    for dx, dy in ((180, 40), (180, 250), (150, 250), (140, 90), (130, 250), (100, 250), (100, 40)):
        page.mouse.move(box["x"] + dx, box["y"] + dy, steps=8)
    page.mouse.up()
    page.get_by_text("Four classifiers", exact=True).wait_for(timeout=90_000)
    for name in ("scratch", "finetune", "frozen_random", "frozen_pretrained"):
        page.locator("[data-testid='stMetric']", has_text=name).first.wait_for(timeout=60_000)
    assert page.get_by_text("What the models see").count() == 1
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.fixture(scope="module")
def sketch_server(sketch_store):
    """A server over a store with a (tiny) `sketch-robust` run beside the reference five."""
    with serve_app(sketch_store.root) as url:
        yield url


def _draw_trousers(page):
    canvas = page.locator("[data-testid='stBidiComponentIsolated'] canvas").last
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 40)
    page.mouse.down()
    for dx, dy in ((180, 40), (180, 250), (150, 250), (140, 90), (130, 250), (100, 250), (100, 40)):
        page.mouse.move(box["x"] + dx, box["y"] + dy, steps=8)
    page.mouse.up()


def test_a_sketch_drawn_on_the_canvas_goes_to_sketch_robust_first(sketch_server, page):
    page.goto(f"{sketch_server}/classify")
    page.get_by_text("Draw something or upload").wait_for(timeout=90_000)
    _draw_trousers(page)
    page.get_by_text("One classifier", exact=True).wait_for(timeout=90_000)
    page.locator("[data-testid='stMetric']", has_text="sketch-robust").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stMetric']").count() == 1
    assert page.get_by_text("Drawings are read by").count() == 1
    # The reference classifiers one click away, sketch-robust still first.
    page.get_by_text("compare with the classifiers chosen in the sidebar").click()
    page.get_by_text("5 classifiers", exact=True).wait_for(timeout=90_000)
    assert page.locator("[data-testid='stMetric']").first.inner_text().startswith("sketch-robust")
    assert page.locator("[data-testid='stException']").count() == 0


# ---- Compare: table selection, brushing, links (12 generated runs: manifests only) ------------------
VALIDATION_CURVES = """() => new Set(Array.from(document.querySelectorAll(
    ".vega-embed svg path[aria-label*='split: validation']"))
    .map(p => /id: ([^;]+)/.exec(p.getAttribute('aria-label'))[1])).size"""


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory):
    from benchmarks.compare_page import synthetic_store
    root = tmp_path_factory.mktemp("compare-store")
    synthetic_store(root, 12)                        # lr and dropout vary among them
    with serve_app(root) as url:
        yield url


def test_compare_selects_runs_brushes_a_factor_and_opens_a_run(compare_server, page):
    import re
    pg = page                              # the module's browser page: one Playwright per process
    pg.goto(f"{compare_server}/compare")
    wait_until_rendered(pg, PAGES["compare"])
    pg.locator(".vega-embed svg").first.wait_for(timeout=60_000)
    assert pg.evaluate(VALIDATION_CURVES) == 12                  # nothing selected: every run drawn
    # Two rows ticked in the table (a canvas grid: rows are 35 px under a 35 px header).
    box = pg.locator("[data-testid='stDataFrame']").first.bounding_box()
    for row in (0, 1):
        pg.mouse.click(box["x"] + 20, box["y"] + 35 * (row + 1) + 17)
        pg.get_by_text(f"{row + 1} of 12 classifier runs drawn").wait_for(timeout=30_000)
    pg.wait_for_function(VALIDATION_CURVES + " === 2", timeout=30_000)
    pg.wait_for_function(RUN_FINISHED, timeout=30_000)
    # A brush across the left half of the lr view (a second try if a late redraw swallowed the first).
    brushed = pg.get_by_text(re.compile(r"Brushed: \d+ of 12 runs"))
    for attempt in range(2):
        pg.wait_for_function(IDLE, timeout=30_000)
        axis = pg.locator(".vega-embed svg [aria-label^=\"X-axis titled 'optimizer.lr'\"]").first
        axis.scroll_into_view_if_needed()
        points = [p.bounding_box() for p in pg.locator(".vega-embed svg path[aria-label^='optimizer.lr']").all()]
        assert len(points) == 12
        y = sum(p["y"] + p["height"] / 2 for p in points) / len(points)
        xs = sorted(p["x"] + p["width"] / 2 for p in points)
        pg.mouse.move(xs[0] + 2, y)
        pg.mouse.down()
        pg.mouse.move((xs[0] + xs[-1]) / 2, y, steps=8)
        pg.mouse.up()
        try:
            brushed.wait_for(timeout=20_000)
            break
        except Exception:
            if attempt:
                pg.screenshot(path=str(Path(tempfile.gettempdir()) / "compare-brush-failed.png"))
                raise
    k = int(re.search(r"Brushed: (\d+)", brushed.inner_text()).group(1))
    assert 0 < k < 12
    # One click opens the first selected run on Training, through the run picker's parameter.
    link = pg.get_by_role("link", name=re.compile("^Training: "))
    run_id = link.inner_text().split("Training: ")[1].strip()
    link.click()
    wait_until_rendered(pg, PAGES["training"])
    assert pg.url.endswith(f"/training?run={run_id}")
    pg.get_by_text(f"Run {run_id}").first.wait_for(timeout=30_000)
    assert pg.locator("[data-testid='stException']").count() == 0
