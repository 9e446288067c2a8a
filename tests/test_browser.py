"""End to end: the real server in headless Chromium (Debian's `chromium`), every page, and an upload."""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (scripts/test.sh installs it)")

PAGES = {"": "Fashion-MNIST representation explorer", "training": "Training",
         "reconstructions": "Reconstructions", "latent_space": "Latent space",
         "confusion": "Confusion matrices", "classify": "Classify your own garment"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_store):
    port = _free_port()
    env = dict(os.environ, FMNIST_CHECKPOINTS=str(trained_store.root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield pg
        browser.close()


def test_every_page_renders_its_main_element(server, page):
    for path, title in PAGES.items():
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
        page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000)
        assert page.locator("[data-testid='stException']").count() == 0, path
        if path in ("training", "confusion", "latent_space"):
            page.locator("[data-testid='stVegaLiteChart'], .vega-embed").first.wait_for(timeout=90_000)


def test_upload_is_classified_by_all_four(server, page, fmnist, tmp_path):
    img = tmp_path / "shoe.png"
    # A dark sneaker on a light background, as a shop photo would be.
    Image.fromarray(255 - np.kron(fmnist.test_images[9].numpy(), np.ones((6, 6), np.uint8))).save(img)
    page.goto(f"{server}/classify")
    page.get_by_role("tab", name="Upload").click()
    page.locator("input[type=file]").set_input_files(str(img))
    page.get_by_text("Four classifiers").wait_for(timeout=90_000)
    for name in ("scratch", "finetune", "frozen_random", "frozen_pretrained"):
        page.locator("[data-testid='stMetric']", has_text=name).first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stMetric']").count() == 4
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=os.environ.get("FMNIST_SCREENSHOT", str(tmp_path / "classify.png")), full_page=True)
