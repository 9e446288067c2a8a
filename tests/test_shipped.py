"""The shipped checkpoints load, match their manifests and reproduce their recorded test accuracy."""
import pytest
import torch

from fmnist_core import AUTOENCODER, CLASSIFIERS, CheckpointStore
from fmnist_core.evaluate import autoencoder_report, classifier_report

SHIPPED = CheckpointStore()


def _shipped(name):
    m = SHIPPED.manifest(name)
    if m is None:
        pytest.skip(f"no shipped checkpoint for {name}")
    return m


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_shipped_classifier_reproduces_its_recorded_test_accuracy(name, fmnist):
    m = _shipped(name)
    SHIPPED.verify(name)                          # every file matches its sha256
    assert m["data_fingerprint"].startswith(fmnist.fingerprint)
    assert m["train_config"]["subset"] is None    # trained on the full protocol's data
    assert m["complete"] and len(m["history"]) == m["train_config"]["epochs"] == 50
    assert "optim" not in m["roles"]              # finished: no resume state shipped
    last = SHIPPED.load_model(name, "last")
    r = classifier_report(last, fmnist.test_images, fmnist.test_labels)
    assert r["test_accuracy"] == pytest.approx(m["history"][-1]["test_acc"], abs=2e-4)
    best = SHIPPED.load_model(name, "best")
    rb = classifier_report(best, fmnist.test_images, fmnist.test_labels)
    assert rb["test_accuracy"] == pytest.approx(m["history"][m["best_epoch"] - 1]["test_acc"], abs=2e-4)


def test_shipped_autoencoder_reproduces_its_recorded_test_mse(fmnist):
    m = _shipped(AUTOENCODER)
    SHIPPED.verify(AUTOENCODER)
    ae = SHIPPED.load_model(AUTOENCODER, "last")
    r = autoencoder_report(ae, fmnist.test_images)
    assert r["test_mse"] == pytest.approx(m["history"][-1]["test_loss"], rel=1e-4)


def test_shipped_set_is_small_and_pickle_free():
    files = [p for p in SHIPPED.root.rglob("*") if p.is_file() and p.name not in ("train.lock", "progress.json", "train.log")]
    if not files:
        pytest.skip("no shipped checkpoints")
    assert sum(p.stat().st_size for p in files) < 20 * 2**20
    for p in files:
        assert p.suffix in (".json", ".safetensors", ".npz"), p
