"""Public mode (FMNIST_PUBLIC): no page shows a control that starts or stops training or a study, every
page says it is a public demo, and the jobs refuse to start anything; with it off the controls are there."""
import json
import re
import shutil
from pathlib import Path

import pytest
from filelock import FileLock
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
PAGES = sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))     # every page, new ones too
START_STOP = re.compile(r"\b(start|stop|train)\b", re.IGNORECASE)


def run_page(page: str, secrets: dict | None = None) -> tuple[AppTest, bool]:
    """The page after a first run through the router (the default page); and whether that first run
    showed the public-demo line. (AppTest runs a page it switches to without the router, where the
    line is drawn above every page; a real server runs the router for every page.)"""
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (secrets or {}).items():
        at.secrets[k] = v
    at.run()
    said = any("Public demo" in i.value for i in at.info)
    at.query_params["study"] = "r2026-table1"          # the Compare page's studies: the one running
    at.switch_page(page)
    at.run()
    return at, said


def controls(at: AppTest) -> list[str]:
    """The labels of every button (form submit buttons included) that starts or stops something."""
    return [b.label for b in at.button if START_STOP.search(b.label)]


@pytest.fixture
def busy_store(trained_store, monkeypatch):
    """The tiny store with a run training (its lock held, a progress file) and a study running."""
    from fmnist_core.study import acquire_study
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(trained_store.root))
    monkeypatch.delenv("FMNIST_PUBLIC", raising=False)
    folder = trained_store.root / "reference-scratch-0000000000"
    folder.mkdir()
    (folder / "progress.json").write_text(json.dumps({"pid": 4_000_000, "epoch": 0, "batch": 3, "batches": 12,
                                                      "epochs": 2, "started": 0}))
    run_lock = FileLock(str(folder / "train.lock"))
    run_lock.acquire()
    study_lock = acquire_study(trained_store, "r2026-table1", {"epochs": 2, "subset": 1200, "started": 0})
    try:
        yield trained_store
    finally:
        study_lock.release()
        run_lock.release()
        shutil.rmtree(folder)


def test_off_the_start_and_stop_controls_are_there(busy_store):
    at, said = run_page("pages/training.py")
    assert not at.exception, at.exception
    assert sorted(controls(at)) == ["Start training", "Stop"] and not said
    at, _ = run_page("pages/compare.py")
    assert not at.exception, at.exception
    assert controls(at) == ["Stop the study"]


@pytest.mark.parametrize("page", PAGES)
def test_public_mode_shows_no_start_or_stop_control_on_any_page(busy_store, monkeypatch, page):
    monkeypatch.setenv("FMNIST_PUBLIC", "1")
    at, said = run_page(page)
    assert not at.exception, at.exception
    assert controls(at) == [] and said
    assert not any(h.value == "Train a new run" for h in at.subheader)    # no training form at all


def test_public_mode_by_streamlit_secret(busy_store):
    at, said = run_page("pages/training.py", secrets={"FMNIST_PUBLIC": True})
    assert not at.exception, at.exception
    assert controls(at) == [] and said
    assert at.get("progress"), "a run training is still shown, only without its Stop button"


@pytest.mark.parametrize("value,public", [("1", True), ("true", True), ("yes", True), ("0", False), ("false", False),
                                          ("", False), ("maybe", True)])
def test_the_setting_reads_yes_and_no_and_anything_else_as_yes(monkeypatch, value, public):
    from fmnist_app import public as mode
    monkeypatch.setenv("FMNIST_PUBLIC", value)
    assert mode.is_public() is public


def test_in_public_mode_the_jobs_start_and_stop_nothing(trained_store, monkeypatch):
    import subprocess

    from fmnist_app import jobs

    def no_process(*a, **k):
        raise AssertionError("a process was started in public mode")
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(trained_store.root))
    monkeypatch.setenv("FMNIST_PUBLIC", "1")
    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(jobs.os, "kill", no_process)
    monkeypatch.setattr(jobs.os, "killpg", no_process)
    assert jobs.start_training("reference-scratch", {"epochs": 1}, "cpu") == jobs.PUBLIC_REFUSAL
    assert jobs.start_study("r2026-table1", 1, 500) == jobs.PUBLIC_REFUSAL
    assert jobs.stop_training(4_000_000) == jobs.PUBLIC_REFUSAL
    assert jobs.stop_study("r2026-table1") == jobs.PUBLIC_REFUSAL
