"""The shipped runs load, match their manifests and reproduce their recorded test figures."""

import pytest

from fmnist_core import RunSpec, RunStore
from fmnist_core.evaluate import autoencoder_report, classifier_report
from fmnist_core.presets import SCHEMES, reference_specs
from fmnist_core.runs import DEFAULT_DIR

from shipped_expected import FULL_STUDIES, REFERENCE_IDS, SEED0_HISTORY_ONLY, mean_std, seed_values, shipped_ids

SHIPPED = RunStore(DEFAULT_DIR)
SPECS = reference_specs()


def _shipped(name):
    rid = SPECS[name].run_id
    assert rid == REFERENCE_IDS[name], "the reference spec changed: its shipped run is no longer found"
    m = SHIPPED.manifest(rid)
    assert m is not None, f"no shipped run {rid}"
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
    # A live store also holds a study driver's lock and state in .studies/ (not shipped: git ignores it).
    files = [p for p in SHIPPED.root.rglob("*") if p.is_file() and p.name not in ("train.lock", "progress.json")
             and p.suffix != ".log" and ".studies" not in p.relative_to(SHIPPED.root).parts]
    assert len(files) > 98
    assert sum(p.stat().st_size for p in files) < 100 * 10**6          # 100 MB
    for p in files:
        assert p.suffix in (".json", ".safetensors", ".npz"), p


@pytest.mark.parametrize("name", FULL_STUDIES)
def test_shipped_study_is_complete_and_its_runs_verify(name, fmnist):
    from fmnist_core.study import load_study, trial_status
    study = load_study(name)
    status = trial_status(study, SHIPPED)
    assert {s["status"] for s in status} == {"complete"}, [s["label"] for s in status if s["status"] != "complete"]
    history_only_at_seed_0 = []
    for s in status:
        m = SHIPPED.verify(s["run_id"])           # every file matches its sha256
        assert m["data_fingerprint"].startswith(fmnist.fingerprint) and "optim" not in m["roles"]
        assert SHIPPED.is_read_only(s["run_id"])
        if not m["roles"]:                        # shipped as its history only: it says so, and holds no file
            assert m["weights_left_out"]["reason"], s["run_id"]
            assert [p.name for p in SHIPPED.folder(s["run_id"]).glob("*.safetensors")] == []
            if m["spec"]["seed"] == 0:
                history_only_at_seed_0.append(s["label"])
        else:
            assert m["spec"]["seed"] == 0, s["run_id"]            # seeds 1 and 2 ship as history
    assert sorted(history_only_at_seed_0) == sorted(SEED0_HISTORY_ONLY.get(name, []))
    # One run per study evaluated again: its last weights give its recorded test figure.
    rid = next(s["run_id"] for s in reversed(status) if SHIPPED.manifest(s["run_id"])["roles"])
    m = SHIPPED.manifest(rid)
    model = SHIPPED.load_model(rid, "last")
    if m["kind"] == "classifier":
        r = classifier_report(model, fmnist.test_images, fmnist.test_labels)
        assert r["test_accuracy"] == pytest.approx(m["history"][-1]["test_acc"], abs=2e-4)
    else:
        r = autoencoder_report(model, fmnist.test_images)
        assert r["test_mse"] == pytest.approx(m["history"][-1]["test_loss"], rel=1e-4)


def test_the_shipped_runs_are_the_full_studies_runs_and_the_listed_others():
    expected = shipped_ids()
    assert set(REFERENCE_IDS.values()) <= set(expected)
    assert sorted(SHIPPED.run_ids()) == expected


def test_every_shipped_run_verifies_and_history_only_runs_say_why():
    for rid in SHIPPED.run_ids():
        m = SHIPPED.verify(rid)                   # every file matches its sha256 and fits the architecture
        assert m["complete"] and "optim" not in m["roles"], rid
        if not m["roles"]:
            assert m["weights_left_out"]["reason"] and m["weights_left_out"]["files"], rid
            assert not list(SHIPPED.folder(rid).glob("*.safetensors")), rid


def test_the_better_recipe_reaches_its_goal_over_three_seeds_selected_on_validation(fmnist):
    from fmnist_core.presets import preset
    from fmnist_core.study import load_study, table
    label = "scratch: all but the flip, 100 epochs"
    mean, std = mean_std(seed_values(SHIPPED, "beyond-recipe", label, "test_accuracy"))   # from the manifests
    assert mean >= 0.935 and std < 0.005
    row = next(r for r in table(load_study("beyond-recipe"), SHIPPED) if r["label"] == label)
    assert row["seeds"] == 3 and len(row["run_ids"]) == 3
    assert row["ours"]["test_accuracy"] == pytest.approx(mean) and row["std"]["test_accuracy"] == pytest.approx(std)
    for rid in row["run_ids"]:                        # selected on validation, never on the test set
        h = SHIPPED.manifest(rid)["history"]
        first_best = max(h, key=lambda r: r["val_acc"])
        assert SHIPPED.manifest(rid)["best_epoch"] == first_best["epoch"]
    from fmnist_core.study import over_seeds
    summary = over_seeds(SHIPPED, preset("recipe-scratch").spec)  # what the Overview page shows
    assert summary["seeds"] == 3 and summary["mean"] == pytest.approx(mean) and summary["std"] == pytest.approx(std)
    seed0 = SHIPPED.find(preset("recipe-scratch").spec)          # ships with its weights
    m = SHIPPED.manifest(seed0)
    r = classifier_report(SHIPPED.load_model(seed0, "best"), fmnist.test_images, fmnist.test_labels)
    assert r["test_accuracy"] == pytest.approx(m["history"][m["best_epoch"] - 1]["test_acc"], abs=2e-4)
