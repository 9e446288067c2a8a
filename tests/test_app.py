"""Every page runs under AppTest, with and without checkpoints; the classify path through both inputs."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ["pages/overview.py", "pages/training.py", "pages/reconstructions.py", "pages/latent_space.py",
         "pages/confusion.py", "pages/classify.py"]


def run_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    return at


@pytest.fixture
def with_store(trained_store, monkeypatch):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(trained_store.root))
    return trained_store


@pytest.fixture
def without_store(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(tmp_path / "empty"))


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_checkpoints(with_store, page):
    at = run_page(page)
    assert not at.exception, at.exception
    assert at.title and at.title[0].value
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_page_explains_missing_checkpoints(without_store, page):
    at = run_page(page)
    assert not at.exception, at.exception
    if page not in ("pages/training.py", "pages/classify.py"):
        assert any("checkpoints" in w.value for w in at.warning), [w.value for w in at.warning]


def test_overview_shows_stored_results(with_store):
    at = run_page("pages/overview.py")
    table = at.dataframe[0].value
    assert list(table.index) == ["scratch", "finetune", "frozen_random", "frozen_pretrained"]
    assert table.loc["finetune", "epochs"] == "2/2"
    assert 0 < table.loc["finetune", "test acc (last)"] <= 1


def test_damaged_checkpoint_is_named_and_nothing_runs_from_it(trained_store, tmp_path, monkeypatch):
    import shutil
    root = tmp_path / "ck"
    shutil.copytree(trained_store.root, root)
    m = trained_store.manifest("finetune")
    bad = root / "finetune" / m["roles"]["last"]
    data = bytearray(bad.read_bytes())
    data[-3] ^= 0x55
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(root))
    at = run_page("pages/confusion.py")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert bad.name in text and "damaged" in text
    assert not at.get("vega_lite_chart") and not at.get("arrow_vega_lite_chart")
