"""Runs are named after their preset, and a preset's name finds its runs: those named after it, and
those of the same spec stored under another name (the shipped runs of the better recipe)."""
import pytest

from fmnist_core import RunStore
from fmnist_core.__main__ import main
from fmnist_core.preset_runs import preset_of, runs_of_preset
from fmnist_core.presets import PRESETS, specs_for
from fmnist_core.runs import DEFAULT_DIR
from fmnist_core.store import CheckpointError
from fmnist_core.study import load_study
from fmnist_core.train import train_runs

QUICK = {"epochs": 2, "subset": 300}         # the recipe warms up over 2 epochs


def test_the_shipped_better_recipe_is_found_by_its_presets_name(capsys):
    store = RunStore(DEFAULT_DIR)
    own = store.find(PRESETS["recipe-scratch"].spec)           # trained by the study beyond-recipe
    assert own.startswith("reference-scratch-")                  # shipped under its old name, never renamed
    assert store.resolve("recipe-scratch") == own
    runs = runs_of_preset(store, "recipe-scratch")
    assert runs[0] == own and len(runs) == 3                     # seeds 0-2
    assert {store.manifest(r)["spec"]["seed"] for r in runs} == {0, 1, 2}
    assert preset_of(store.manifest(own)["spec"]) == "recipe-scratch"
    assert preset_of(store.manifest(store.find(PRESETS["reference-scratch"].spec))["spec"]) == "reference-scratch"
    assert main(["runs", "--checkpoints", str(DEFAULT_DIR)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if "(preset recipe-scratch)" in line]
    assert sorted(line.split()[0] for line in listed) == sorted(runs)


def test_a_run_is_found_by_its_presets_name_whatever_it_is_stored_under(fmnist, tmp_path, capsys):
    (spec,) = specs_for("recipe-scratch", QUICK)
    assert spec.run_id.startswith("recipe-scratch-")             # `train --preset recipe-scratch` names it so
    # The same spec as the study trains it: reference-scratch with the recipe's fields set.
    trial = next(s for t, seed, s in load_study("beyond-recipe").specs(**QUICK)
                 if t.label == "scratch: all but the flip, 100 epochs" and seed == 0)
    assert trial.spec_hash == spec.spec_hash and trial.run_id.startswith("reference-scratch-")
    store = RunStore(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="no run 'recipe-scratch'"):
        store.resolve("recipe-scratch")
    train_runs([trial], fmnist, store)
    assert store.resolve("recipe-scratch") == trial.run_id       # its only run, found through its spec
    args = ["train", "--preset", "recipe-scratch", "--epochs", "2", "--subset", "300", "--checkpoints", str(store.root)]
    assert main(args) == 0                                        # the same spec trains once: found, not retrained
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{trial.run_id}: 2 epochs, test_acc=") and last.endswith("(preset recipe-scratch)")
    assert store.run_ids() == [trial.run_id]
    assert store.summary(trial.run_id)["preset"] == "recipe-scratch"


def test_the_app_picker_opens_a_preset_by_its_name(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(DEFAULT_DIR))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.query_params["run"] = "recipe-scratch"
    at.switch_page("pages/training.py").run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    own = RunStore(DEFAULT_DIR).find(PRESETS["recipe-scratch"].spec)
    assert at.selectbox(key="_w_run").value == own and at.query_params["run"] == own
    assert any("preset recipe-scratch" in c.value for c in at.sidebar.caption)


def test_a_reference_presets_name_finds_the_reference_run_among_its_seeds_and_studies():
    """`reference-finetune` has 21 shipped runs (seeds, studies): its name means the reference run,
    whose spec starts from the reference autoencoder, as `train --preset` makes it."""
    from shipped_expected import REFERENCE_IDS

    store = RunStore(DEFAULT_DIR)
    for scheme, rid in REFERENCE_IDS.items():
        assert len(runs_of_preset(store, f"reference-{scheme}")) >= 3, scheme
        assert store.resolve(f"reference-{scheme}") == rid, scheme
