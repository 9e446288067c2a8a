"""Faults: a killed run, a full disk, concurrent classification against shared models."""
import errno
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import CheckpointError, CheckpointStore, TrainConfig
from fmnist_core.inference import Predictor
from fmnist_core.train import train_model

ROOT = Path(__file__).resolve().parent.parent


def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    ck = tmp_path / "ck"
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--epochs", "40", "--subset", "1200",
           "--models", "frozen_random", "--checkpoints", str(ck), "--quiet", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = ck / "frozen_random" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not manifest.exists():
        time.sleep(0.05)
    time.sleep(0.3)                       # somewhere inside a later epoch, maybe mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = CheckpointStore(ck)
    m = store.verify("frozen_random")     # every file the manifest names is whole and matches
    done = len(m["history"])
    assert 1 <= done < 40
    store.load_model("frozen_random", "last")
    # The next run resumes where the killed one stopped (the dead process's lock is gone).
    cmd[cmd.index("40")] = str(done + 1)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    m2 = store.manifest("frozen_random")
    assert len(m2["history"]) == done + 1 and m2["history"][:done] == m["history"]
    assert not list((ck / "frozen_random").glob(".*.tmp"))


def test_full_disk_gives_a_clear_error_and_keeps_the_last_epoch(tmp_path, tiny_split, monkeypatch):
    store = CheckpointStore(tmp_path)
    train_model("frozen_random", tiny_split, store, TrainConfig(epochs=1, subset=1200))
    before = store.manifest("frozen_random")

    def no_space(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("fmnist_core.store.atomic_write", no_space)
    with pytest.raises(CheckpointError, match="No space left on device.*untouched"):
        train_model("frozen_random", tiny_split, store, TrainConfig(epochs=3, subset=1200))
    monkeypatch.undo()
    assert store.manifest("frozen_random") == before
    store.verify("frozen_random")


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
    manifest = ck / "frozen_random" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not manifest.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130
    assert json.loads((ck / "progress.json").read_text())["status"] == "stopped"
    CheckpointStore(ck).verify("frozen_random")
