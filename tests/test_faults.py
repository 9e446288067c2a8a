"""Faults: a killed run, a full disk, concurrent classification against shared models."""
import errno
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import CheckpointError, RunStore
from fmnist_core.inference import Predictor
from fmnist_core.train import train_run

from conftest import tiny_specs

ROOT = Path(__file__).resolve().parent.parent


FAULTY = [sys.executable, str(ROOT / "tests" / "fault_trainer.py")]
TRAIN = ["train", "--epochs", "40", "--subset", "1200", "--models", "frozen_random", "--quiet", "--device", "cpu"]


def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    ck = tmp_path / "ck"
    cmd = [*TRAIN, "--checkpoints", str(ck)]
    # Killed halfway through writing epoch 2's manifest, epoch 2's weights already written.
    out = subprocess.run([*FAULTY, "kill-mid-manifest", "2", *cmd], cwd=ROOT, capture_output=True, timeout=600)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    (folder,) = ck.glob("reference-frozen_random-*")
    run_id = folder.name
    assert list(folder.glob(".manifest.json.*.tmp"))          # the cut-short write is there
    store = RunStore(ck)
    m = store.verify(run_id)              # every file the manifest names is whole and matches
    assert len(m["history"]) == 1 and not store.is_training(run_id)
    store.load_model(run_id, "last")
    # The same command resumes where the killed one stopped (the dead process's lock is gone); it is
    # stopped by SIGTERM as its next epoch begins.
    out = subprocess.run([*FAULTY, "term-after-manifest", "1", *cmd], cwd=ROOT, capture_output=True, timeout=600)
    assert out.returncode == 130, out.stderr[-2000:]
    m2 = store.verify(run_id)
    assert len(m2["history"]) == 2 and m2["history"][:1] == m["history"]
    assert not list(folder.glob(".*.tmp"))    # the killed write's leftovers are gone


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
    proc = subprocess.Popen([*FAULTY, "term-after-manifest", "1", *TRAIN, "--checkpoints", str(ck)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.wait(600) == 130
    (folder,) = ck.glob("reference-frozen_random-*")
    assert json.loads((folder / "progress.json").read_text())["status"] == "stopped"
    assert len(RunStore(ck).verify(folder.name)["history"]) == 1
