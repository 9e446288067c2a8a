"""The real app in a headless browser, for the browser tests and the latency benchmark.

`serve_app` runs `streamlit run streamlit_app.py` on a free local port over a run store folder (None:
the default store, the shipped checkpoints/ and the user folder) and yields its URL; `chromium_page`
opens Debian's chromium on it (Playwright's own browser download cannot work offline);
`wait_until_rendered` waits for a page's title and the end of its run.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# URL path -> the page's title (its first heading).
PAGES = {"": "Fashion-MNIST representation explorer", "training": "Training",
         "reconstructions": "Reconstructions", "latent_space": "Latent space",
         "confusion": "Confusion matrices", "classify": "Classify your own garment", "compare": "Compare runs"}

# Streamlit shows its status widget while a script run is in progress.
RUN_FINISHED = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(checkpoints: str | os.PathLike | None, start_timeout_s: float = 60.0):
    """Yield the URL of the app serving `checkpoints`; RuntimeError where it does not start in time."""
    port = _free_port()
    env = dict(os.environ)
    if checkpoints is not None:
        env["FMNIST_CHECKPOINTS"] = str(checkpoints)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"streamlit did not start on {url}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """A Playwright page in Debian's headless chromium."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def wait_until_rendered(page, title: str, timeout_ms: int = 90_000) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(RUN_FINISHED, timeout=timeout_ms)
