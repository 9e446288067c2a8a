"""Every page runs under AppTest, with and without runs; the run picker and its URL parameters."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ["pages/overview.py", "pages/training.py", "pages/reconstructions.py", "pages/latent_space.py",
         "pages/confusion.py", "pages/classify.py"]


def run_page(page: str, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page(page)
    at.run()
    return at


def charts(at: AppTest) -> list:
    return [*at.get("vega_lite_chart"), *at.get("arrow_vega_lite_chart")]


def chart_titles(at: AppTest) -> list[str]:
    import json
    return [json.loads(c.proto.spec).get("title", "") for c in charts(at)]


@pytest.fixture
def with_store(trained_store, monkeypatch):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(trained_store.root))
    return trained_store


@pytest.fixture
def without_store(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(tmp_path / "empty"))


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_runs(with_store, page):
    at = run_page(page)
    assert not at.exception, at.exception
    assert at.title and at.title[0].value
    assert not at.error
    assert not at.warning, [w.value for w in at.warning]


@pytest.mark.parametrize("page", PAGES)
def test_page_explains_missing_runs(without_store, page):
    at = run_page(page)
    assert not at.exception, at.exception
    if page not in ("pages/training.py", "pages/classify.py"):
        assert any("checkpoints" in w.value and "fmnist_core train" in w.value for w in at.warning), \
            [w.value for w in at.warning]


def test_overview_shows_reference_results_and_all_runs(with_store, tiny_ids):
    at = run_page("pages/overview.py")
    table = at.dataframe[0].value
    assert list(table.index) == ["scratch", "finetune", "frozen_random", "frozen_pretrained"]
    assert table.loc["finetune", "epochs"] == "2/2"
    assert table.loc["finetune", "run"] == tiny_ids["finetune"]
    recorded = with_store.manifest(tiny_ids["finetune"])["history"][-1]["test_acc"]
    assert table.loc["finetune", "test acc (last)"] == pytest.approx(recorded)
    assert table.loc["finetune", "test acc over seeds"] == "—"     # the study's full-size runs are not here
    assert sorted(at.dataframe[1].value.index) == sorted(tiny_ids.values())


def test_overview_of_the_shipped_store_shows_the_better_recipe_and_which_runs_are_history(monkeypatch):
    from fmnist_core.runs import DEFAULT_DIR
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(DEFAULT_DIR))
    at = run_page("pages/overview.py")
    assert not at.exception, at.exception
    assert any("recipe-scratch" in c.value and "over 3 seeds" in c.value for c in at.caption)
    from fmnist_core import RunStore
    from shipped_expected import mean_std, seed_values
    reference = at.dataframe[0].value
    for scheme in ("scratch", "frozen_random"):        # seeds 1 and 2 ship as history: their spread shows
        mean, std = mean_std(seed_values(RunStore(DEFAULT_DIR), "r2026-table1", scheme))   # from the manifests
        assert reference.loc[scheme, "test acc over seeds"] == f"{mean:.4f} ± {std:.4f} (3 seeds)"
    runs = at.dataframe[1].value
    assert {"yes", "history only"} == set(runs["weights"])
    assert runs.loc["reference-scratch-ebb8b6d8f8", "weights"] == "yes"


def test_training_page_shows_the_chosen_run_and_the_form(with_store, tiny_ids):
    at = run_page("pages/training.py")
    assert at.selectbox(key="_w_run").value == tiny_ids["autoencoder"]       # the default: the reference AE
    assert any(m.value == "2/2" for m in at.metric)
    assert len(charts(at)) == 1                                              # the autoencoder's MSE curves
    assert any("A finished or shipped run is never modified" in m.value for m in at.markdown)
    at.selectbox(key="_w_run").set_value(tiny_ids["finetune"]).run()
    assert not at.exception and at.query_params["run"] == tiny_ids["finetune"]
    assert len(charts(at)) == 2                                              # loss and accuracy


def test_the_form_plans_new_runs_only():
    from fmnist_app import jobs, lib
    overrides, ids = jobs.plan("r2024-autoencoder", {**jobs.preset_fields("r2024-autoencoder"), "epochs": 3})
    assert overrides == {"epochs": 3} and len(ids) == 1 and ids[0].startswith("r2024-autoencoder-")
    _, ids = jobs.plan(jobs.REFERENCE_PROTOCOL, {**jobs.preset_fields(jobs.REFERENCE_PROTOCOL), "subset": 1200})
    assert len(ids) == 5
    with pytest.raises(lib.SpecError):
        jobs.plan("r2024-autoencoder", {**jobs.preset_fields("r2024-autoencoder"), "optimizer.lr": -1.0})


def test_run_in_the_url_selects_the_run(with_store, tiny_ids):
    at = run_page("pages/training.py", run=tiny_ids["scratch"])
    assert not at.exception and not at.warning
    assert at.selectbox(key="_w_run").value == tiny_ids["scratch"]
    assert at.query_params["run"] == tiny_ids["scratch"]
    assert len(charts(at)) == 2                                              # loss and accuracy
    assert any(tiny_ids["scratch"] in s.value for s in at.subheader)


def test_unknown_run_in_the_url_warns_and_falls_back(with_store, tiny_ids):
    at = run_page("pages/reconstructions.py", run="no-such-run-123")
    assert not at.exception
    assert any("no-such-run-123" in w.value and "default" in w.value for w in at.warning)
    assert at.selectbox(key="_w_run").value == tiny_ids["autoencoder"]
    assert at.query_params["run"] == tiny_ids["autoencoder"]
    assert any(tiny_ids["autoencoder"] in c.value for c in at.caption)


def test_classifier_run_on_an_autoencoder_page_warns(with_store, tiny_ids):
    at = run_page("pages/latent_space.py", run=tiny_ids["finetune"])
    assert not at.exception
    assert any(tiny_ids["finetune"] in w.value and "not an autoencoder" in w.value for w in at.warning)


def test_confusion_shows_the_chosen_runs(with_store, tiny_ids):
    at = run_page("pages/confusion.py", runs=f"{tiny_ids['scratch']},{tiny_ids['frozen_random']}")
    assert not at.exception and not at.warning
    assert at.multiselect(key="_w_runs").value == [tiny_ids["scratch"], tiny_ids["frozen_random"]]
    titles = chart_titles(at)
    assert len(titles) == 2 and titles[0].startswith("scratch: accuracy") and titles[1].startswith("frozen_random")
    at = run_page("pages/confusion.py", runs=f"{tiny_ids['scratch']},nope-1")
    assert any("nope-1" in w.value for w in at.warning) and len(charts(at)) == 1


def test_runs_shipped_as_history_only_are_curves_not_models(trained_store, tiny_ids, tmp_path, monkeypatch):
    import shutil
    from fmnist_core import RunStore
    shutil.copytree(trained_store.root, tmp_path / "ck")
    store = RunStore(tmp_path / "ck")
    for name in ("autoencoder", "scratch"):                    # these two ship as their history only
        shutil.rmtree(store.folder(tiny_ids[name]))
        store.add_history_only(trained_store.manifest(tiny_ids[name]), "left out for the test")
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(store.root))
    at = run_page("pages/training.py", run=tiny_ids["scratch"])              # curves need no weights
    assert not at.exception and not at.warning and len(charts(at)) == 2
    assert any("history only" in c.value for c in at.caption)
    at = run_page("pages/confusion.py", runs=tiny_ids["scratch"])           # a network page does
    assert not at.exception
    assert any(tiny_ids["scratch"] in w.value and "history only" in w.value for w in at.warning)
    assert tiny_ids["scratch"] not in at.multiselect(key="_w_runs").options
    at = run_page("pages/reconstructions.py", run=tiny_ids["autoencoder"])
    assert not at.exception
    assert any("history only" in c.value for c in at.sidebar.caption)        # no autoencoder to show


def test_damaged_checkpoint_is_named_and_nothing_runs_from_it(trained_store, tiny_ids, tmp_path, monkeypatch):
    import shutil
    root = tmp_path / "ck"
    shutil.copytree(trained_store.root, root)
    m = trained_store.manifest(tiny_ids["finetune"])
    bad = root / tiny_ids["finetune"] / m["roles"]["last"]
    data = bytearray(bad.read_bytes())
    data[-3] ^= 0x55
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(root))
    at = run_page("pages/confusion.py")
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert bad.name in text and "damaged" in text
    titles = chart_titles(at)
    assert len(titles) == 3 and not any(t.startswith("finetune") for t in titles)


# ---- Compare ----------------------------------------------------------------------------------
def test_compare_over_the_shipped_runs_shows_factors_results_and_published_values(monkeypatch):
    from fmnist_core.runs import DEFAULT_DIR
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(DEFAULT_DIR))
    at = run_page("pages/compare.py", study="r2026-table1")
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert {"init", "frozen", "final", "best", "best epoch", "gap", "published"} <= set(table.columns)
    assert "optimizer.lr" not in table.columns                       # only what varies is a column
    assert len(table) == 15 and "seed" in table.columns                # Table I: 5 runs at 3 seeds
    ft = table[(table["trial"] == "r2026-table1: finetune") & (table["seed"] == 0)].iloc[0]
    from fmnist_core import RunStore
    store = RunStore(DEFAULT_DIR)
    h = store.manifest(ft["run"])["history"]
    best = max(h, key=lambda r: r["val_acc"])
    assert ft["published"] == 0.9276 and (ft["best"], ft["best epoch"]) == (best["val_acc"], best["epoch"])
    assert ft["final"] == h[-1]["val_acc"]
    assert len(charts(at)) == 1                                      # curves, factor views, parallel coords
    spec = json.loads(charts(at)[0].proto.spec)
    params = [p["name"] for p in spec["params"]]                     # Altair lifts them to the top
    assert sorted(params) == ["brush_f0", "brush_f1", "brush_f2"]   # init, frozen, seed: one view each
    from scipy import stats
    from shipped_expected import mean_std, seed_values
    own = at.dataframe[1].value.set_index("trial")                   # the study's table, at final_test_acc
    ft_mean, _ = mean_std(seed_values(store, "r2026-table1", "finetune"))     # from the manifests
    assert own.loc["finetune", "published"] == 0.9276 and own.loc["finetune", "ours"] == pytest.approx(ft_mean)
    assert own.loc["scratch", "seeds"] == 3
    # Beyond the noise: (mean of 3) - (one published run), t-test on 2 degrees (an independent reckoning).
    mean, std = mean_std(seed_values(store, "r2026-table1", "scratch"))
    p = 2 * stats.t.sf(abs(mean - own.loc["scratch", "published"]) / (std * (1 + 1 / 3) ** 0.5), 2)
    assert own.loc["scratch", "beyond the noise"] == ("yes" if p < 0.05 else "no")
    trials = at.dataframe[2].value                                   # Table I at 3 seeds, all shipped
    assert len(trials) == 15 and set(trials["status"]) == {"complete"}
    assert any(re.search(r"\b12 of 12 classifier runs drawn", c.value) for c in at.caption), \
        [c.value for c in at.caption]


def test_compare_with_an_empty_store_says_how_to_get_runs(without_store):
    at = run_page("pages/compare.py")
    assert not at.exception, at.exception
    assert any("fmnist_core train" in w.value for w in at.warning)
    assert any(h.value == "Studies" for h in at.header)                # a study can be started from here


def test_compare_with_a_partial_study_and_a_study_running(with_store, tiny_ids):
    from fmnist_core.study import acquire_study
    # The tiny runs are Table I at 2 epochs on 1,200 images, seed 0: a third of that study at that size.
    lock = acquire_study(with_store, "r2026-table1", {"epochs": 2, "subset": 1200, "started": 0})
    try:
        at = run_page("pages/compare.py", study="r2026-table1")
        assert not at.exception, at.exception
        assert sorted(at.dataframe[0].value["run"]) == sorted(tiny_ids.values())
        own = at.dataframe[1].value              # the study's table: no full-size runs, so the quick size run
        assert list(own["trial"]) == ["autoencoder", "finetune", "scratch", "frozen_pretrained", "frozen_random"]
        assert set(own["runs"]) == {"1 of 3 seeds complete"} and set(own["seeds"]) == {1}
        assert any("quick size `--epochs 2 --subset 1200`" in c.value for c in at.caption)
        trials = at.dataframe[2].value
        assert len(trials) == 15 and (trials["status"] == "complete").sum() == 5
        assert set(trials.loc[trials["seed"] > 0, "status"]) == {"missing"}
        assert any("Running since" in i.value for i in at.info)
        assert at.button(key="stop_study")                            # a stop, not a second start
        assert not any(b.label == "Start the study" for b in at.button)
    finally:
        lock.release()
    at = run_page("pages/compare.py", study="r2026-table1")
    assert any(b.label == "Start the study" for b in at.button)


@pytest.mark.parametrize("runs", [None, 200])
def test_compare_reads_the_runs_once_and_lists_every_one(tmp_path, monkeypatch, runs):
    """Later visits reuse the table read on the first one (the page's speed is measured, with its
    result file, by benchmarks/compare_page.py)."""
    from benchmarks.compare_page import synthetic_store
    from fmnist_core import compare
    from fmnist_core.runs import DEFAULT_DIR
    from shipped_expected import shipped_ids
    root, ids = DEFAULT_DIR, shipped_ids()
    if runs:
        root = tmp_path / "many"
        ids = synthetic_store(root, runs)
    calls = []
    real = compare.runs_table
    monkeypatch.setattr(compare, "runs_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(root))
    at = run_page("pages/compare.py")
    assert not at.exception, at.exception
    read = len(calls)
    assert read == (1 if runs else read) and read <= 1      # the shipped store may be cached by an earlier test
    for _ in range(2):
        at.switch_page("pages/overview.py").run()
        at.switch_page("pages/compare.py").run()
    assert not at.exception and len(calls) == read
    assert sorted(at.dataframe[0].value["run"]) == sorted(ids)
    if runs:                                  # 5 seeds of each setting: one row per group, mean ± std
        at.toggle[0].set_value(True).run()
        table = at.dataframe[0].value
        assert not at.exception and len(table) == runs // 5 and set(table["seeds"]) == {5}
        assert (table["best ± std"] > 0).all() and "seed" not in table.columns


def test_compare_shows_a_studys_gains_over_the_trial_each_changes(monkeypatch):
    from fmnist_core.runs import DEFAULT_DIR
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(DEFAULT_DIR))
    at = run_page("pages/compare.py", study="beyond-recipe")
    assert not at.exception, at.exception
    own = at.dataframe[1].value.set_index("trial")
    recipe = own.loc["scratch: all but the flip, 100 epochs"]      # the better recipe, 3 seeds shipped
    assert recipe["against"] == "scratch: reference recipe" and recipe["seeds"] == 3
    assert recipe["gain"] == pytest.approx(recipe["ours"] - own.loc["scratch: reference recipe", "ours"])
    assert recipe["gain"] > 0.01 and recipe["gain beyond the noise"] == "yes"
    assert pd.isna(own.loc["finetune: reference recipe", "against"])
    import pyarrow as pa
    gains = next(c for c in charts(at) if "What each change buys" in json.loads(c.proto.spec).get("title", ""))
    frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in gains.proto.datasets]
    (data,) = [f for f in frames if "verdict" in f]                 # a point and its 95% interval per measured trial
    by_trial = data.set_index("trial").to_dict("index")
    assert set(by_trial) == {t for t in own.index if not pd.isna(own.loc[t, "gain"])} and len(by_trial) >= 10
    assert by_trial["scratch: all but the flip, 100 epochs"]["verdict"] == "beyond the noise (p < 0.05)"
    assert by_trial["scratch: all but the flip, 100 epochs"]["gain"] == pytest.approx(recipe["gain"])


def test_compare_names_a_damaged_run_and_compares_the_others(trained_store, tiny_ids, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(trained_store.root, tmp_path / "ck")
    manifest = tmp_path / "ck" / tiny_ids["scratch"] / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(tmp_path / "ck"))
    at = run_page("pages/compare.py")
    assert not at.exception, at.exception
    assert any(tiny_ids["scratch"] in w.value and "not valid JSON" in w.value for w in at.warning)
    assert sorted(at.dataframe[0].value["run"]) == sorted(r for n, r in tiny_ids.items() if n != "scratch")
