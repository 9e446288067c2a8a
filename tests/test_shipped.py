"""The shipped runs load, match their manifests and reproduce their recorded test figures."""
import pytest

from fmnist_core import RunSpec, RunStore
from fmnist_core.evaluate import autoencoder_report, classifier_report
from fmnist_core.presets import SCHEMES, reference_specs
from fmnist_core.runs import DEFAULT_DIR

SHIPPED = RunStore(DEFAULT_DIR)
SPECS = reference_specs()


def _shipped(name):
    rid = SPECS[name].run_id
    m = SHIPPED.manifest(rid)
    if m is None:
        pytest.skip(f"no shipped run {rid}")
    return rid, m


@pytest.mark.parametrize("name", SCHEMES)
def test_shipped_classifier_reproduces_its_recorded_test_accuracy(name, fmnist):
    rid, m = _shipped(name)
    SHIPPED.verify(rid)                           # every file matches its sha256
    assert m["data_fingerprint"].startswith(fmnist.fingerprint)
    assert RunSpec.from_dict(m["spec"]) == SPECS[name]    # the reference protocol's spec, full data
    assert m["complete"] and len(m["history"]) == m["spec"]["epochs"] == 50
    assert "optim" not in m["roles"]              # finished: no resume state shipped
    assert SHIPPED.is_read_only(rid)
    last = SHIPPED.load_model(rid, "last")
    r = classifier_report(last, fmnist.test_images, fmnist.test_labels)
    assert r["test_accuracy"] == pytest.approx(m["history"][-1]["test_acc"], abs=2e-4)
    best = SHIPPED.load_model(rid, "best")
    rb = classifier_report(best, fmnist.test_images, fmnist.test_labels)
    assert rb["test_accuracy"] == pytest.approx(m["history"][m["best_epoch"] - 1]["test_acc"], abs=2e-4)


def test_shipped_autoencoder_reproduces_its_recorded_test_mse(fmnist):
    rid, m = _shipped("autoencoder")
    SHIPPED.verify(rid)
    ae = SHIPPED.load_model(rid, "last")
    r = autoencoder_report(ae, fmnist.test_images)
    assert r["test_mse"] == pytest.approx(m["history"][-1]["test_loss"], rel=1e-4)


def test_pretrained_shipped_runs_name_the_shipped_autoencoder():
    ae_id, ae = _shipped("autoencoder")
    for name in ("finetune", "frozen_pretrained"):
        _, m = _shipped(name)
        assert m["spec"]["pretrained_from"] == ae_id
        assert m["provenance"]["encoder_source"] == {"run": ae_id, "file": ae["roles"]["last"]}


def test_shipped_set_is_small_and_pickle_free():
    files = [p for p in SHIPPED.root.rglob("*") if p.is_file() and p.name not in ("train.lock", "progress.json")
             and p.suffix != ".log"]
    if not files:
        pytest.skip("no shipped checkpoints")
    assert sum(p.stat().st_size for p in files) < 100 * 2**20
    for p in files:
        assert p.suffix in (".json", ".safetensors", ".npz"), p
