"""The shipped `sketch-robust` runs (docs/drawings.md): seed 0 with its last epoch's weights (the
best epoch's file left out for size) reproduces its recorded test accuracy; seeds 1-2 ship as
history; the benchmark table the app reads names the shipped run."""
import pytest

from fmnist_core import RunStore
from fmnist_core.evaluate import classifier_report
from fmnist_core.inputs import DRAWING_PRESET, PHOTO_RESULTS, benchmark_table, preset_run
from fmnist_core.presets import specs_for
from fmnist_core.runs import DEFAULT_DIR

SHIPPED = RunStore(DEFAULT_DIR)


def _seed(seed: int):
    rid = SHIPPED.find(specs_for(DRAWING_PRESET, {"seed": seed})[-1])
    assert rid is not None, f"{DRAWING_PRESET} seed {seed} is not shipped"
    return rid, SHIPPED.verify(rid)


def test_seed_0_ships_with_weights_and_reproduces_its_test_accuracy(fmnist):
    rid, m = _seed(0)
    assert rid.startswith("sketch-robust-") and m["complete"] and set(m["roles"]) == {"last"}
    assert set(m["weights_left_out"]["roles"]) == {"best"} and m["weights_left_out"]["reason"]
    assert m["data_fingerprint"].startswith(fmnist.fingerprint)
    r = classifier_report(SHIPPED.load_model(rid, "last"), fmnist.test_images, fmnist.test_labels)
    assert r["test_accuracy"] == pytest.approx(m["history"][-1]["test_acc"], abs=5e-4)   # GPU-trained, CPU-read
    assert preset_run(SHIPPED, DRAWING_PRESET) == rid                                   # what the app shows


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_ship_as_history(seed):
    rid, m = _seed(seed)
    assert m["complete"] and not m["roles"] and m["weights_left_out"]["reason"]


def test_the_benchmark_table_names_the_shipped_run():
    rid, _ = _seed(0)
    table = benchmark_table(PHOTO_RESULTS)
    assert table is not None, "benchmarks/results/realworld-table.json is missing"
    assert table["runs"][DRAWING_PRESET] == rid


def test_the_earlier_presets_runs_keep_their_recorded_results_as_history():
    """The first preset (half the images drawn, 30 epochs) made way for the current one: its seed 0
    gave up its weights for the size limit, and every figure it recorded stays as it was."""
    expected = {"sketch-robust-11e106f9c8": 0.9106, "sketch-robust-9a6176c320": 0.9097,
                "sketch-robust-b7cc33d52e": 0.9144}
    for rid, test_acc in expected.items():
        m = SHIPPED.verify(rid)
        assert m["complete"] and not m["roles"] and m["weights_left_out"]["reason"]
        assert (len(m["history"]), m["history"][-1]["test_acc"]) == (30, test_acc)
    gone = SHIPPED.manifest("sketch-robust-11e106f9c8")["weights_left_out"]
    assert set(gone["files"]) == {"weights.e030-76fce5.safetensors"} and set(gone["roles"]) >= {"last", "best"}
