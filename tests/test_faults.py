"""Faults: a killed run, a full disk, concurrent classification against shared models."""
import errno
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import CheckpointError, RunStore
from fmnist_core.inference import Predictor
from fmnist_core.train import train_run

from conftest import tiny_specs

ROOT = Path(__file__).resolve().parent.parent


def _wait_for_manifest(ck: Path, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(ck.glob("reference-frozen_random-*/manifest.json"))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no epoch was written")


def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    ck = tmp_path / "ck"
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--epochs", "40", "--subset", "1200",
           "--models", "frozen_random", "--checkpoints", str(ck), "--quiet", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_id = _wait_for_manifest(ck).parent.name
    time.sleep(0.3)                       # somewhere inside a later epoch, maybe mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = RunStore(ck)
    m = store.verify(run_id)              # every file the manifest names is whole and matches
    done = len(m["history"])
    assert 1 <= done < 40 and not store.is_training(run_id)
    store.load_model(run_id, "last")
    # The same command resumes where the killed one stopped (the dead process's lock is gone).
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(store.manifest(run_id)["history"]) <= done:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130
    m2 = store.manifest(run_id)
    assert len(m2["history"]) > done and m2["history"][:done] == m["history"]
    assert not list(store.folder(run_id).glob(".*.tmp"))


def test_full_disk_gives_a_clear_error_and_keeps_the_last_epoch(tmp_path, fmnist, monkeypatch):
    store = RunStore(tmp_path)
    spec = tiny_specs(epochs=3)["frozen_random"]
    written = []

    def no_space_after_one_epoch(path, data, _real=__import__("fmnist_core.store", fromlist=["x"]).atomic_write):
        if path.name == "manifest.json" and written:
            raise OSError(errno.ENOSPC, "No space left on device")
        _real(path, data)
        if path.name == "manifest.json":
            written.append(path)

    monkeypatch.setattr("fmnist_core.runs.atomic_write", no_space_after_one_epoch)
    with pytest.raises(CheckpointError, match="No space left on device.*untouched"):
        train_run(spec, fmnist, store)
    monkeypatch.undo()
    m = store.verify(spec.run_id)
    assert len(m["history"]) == 1 and not m["complete"]


def test_cli_reports_an_unwritable_checkpoint_folder(tmp_path, capsys):
    from fmnist_core.__main__ import main
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--epochs", "1", "--subset", "600", "--checkpoints", str(blocker / "ck"), "--quiet"]) == 2
    assert "cannot write checkpoints" in capsys.readouterr().err


def test_concurrent_sessions_get_the_same_answers(trained_store, fmnist):
    predictor = Predictor.from_store(trained_store)
    images = fmnist.test_images[:64].numpy()
    alone = predictor.predict_proba(images)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: predictor.predict_proba(images[i % 64:i % 64 + 1]), range(64)))
    for i, r in enumerate(results):
        for name, p in r.items():
            np.testing.assert_allclose(p[0], alone[name][i], rtol=1e-4, atol=1e-6)
    assert all(not m.training for m in predictor.classifiers.values())


def test_sigterm_stops_a_run_cleanly_and_marks_it_stopped(tmp_path):
    """What the app's Stop button sends; it must work even where SIGINT was ignored at start."""
    import json
    ck = tmp_path / "ck"
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--epochs", "40", "--subset", "1200",
           "--models", "frozen_random", "--checkpoints", str(ck), "--quiet", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    folder = _wait_for_manifest(ck).parent
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130
    assert json.loads((folder / "progress.json").read_text())["status"] == "stopped"
    RunStore(ck).verify(folder.name)
