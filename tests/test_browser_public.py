"""Public mode on the real server (Debian's headless `chromium`) over the shipped runs: the router draws
the public-demo line above every page (AppTest runs a switched-to page without the router), and no
page offers a start or stop control."""
import os

import pytest

from benchmarks.app_server import CHROMIUM, PAGES, chromium_page, serve_app, wait_until_rendered

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (scripts/test.sh installs it)")


def test_public_mode_on_the_real_server(monkeypatch):
    monkeypatch.setenv("FMNIST_PUBLIC", "1")                  # serve_app passes the environment on
    with serve_app(None) as url, chromium_page() as page:
        for path in ("training", "compare", ""):
            page.goto(f"{url}/{path}")
            wait_until_rendered(page, PAGES[path], timeout_ms=120_000)
            assert page.get_by_text("Public demo").count() == 1, path
            # The page's and the sidebar's buttons (Streamlit's own header has Stop while a script runs, and Deploy).
            labels = [b.inner_text().lower() for b in page.locator(
                "[data-testid='stMain'] button, [data-testid='stSidebar'] button").all()]
            assert not [b for b in labels if "start" in b or "stop" in b or "train" in b], (path, labels)
            assert page.locator("[data-testid='stException']").count() == 0, path
