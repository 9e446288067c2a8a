"""Comparing runs: factors that vary, best and final metrics, study values beside ours, seed groups."""
from fmnist_core import RunStore
from fmnist_core.compare import band, curves, flat_spec, in_study, runs_table, seed_groups, spec_factors, varying
from fmnist_core.runs import DEFAULT_DIR
from fmnist_core.study import load_study


def test_runs_table_of_the_shipped_store_has_varying_factors_and_published_values():
    store = RunStore(DEFAULT_DIR)
    rows, factors = runs_table(store, [load_study("r2026-table1")])
    assert {"kind", "init", "frozen", "optimizer.lr"} <= set(factors)       # the other studies vary lr
    table_one = [r for r in rows if "r2026-table1" in r["studies"]]
    assert {r["name"] for r in table_one} >= {"reference-autoencoder", "reference-finetune"}
    assert {"kind", "init", "frozen"} <= set(varying(table_one)) and "optimizer.lr" not in varying(table_one)
    by_name = {r["name"]: r for r in table_one if r["spec_flat"]["seed"] == 0}       # the shipped reference runs
    ft = by_name["reference-finetune"]
    m = store.manifest(ft["id"])
    assert ft["metric"] == "val_acc" and ft["final"] == m["history"][-1]["val_acc"]
    assert ft["best"] == max(r["val_acc"] for r in m["history"]) and 1 <= ft["best_epoch"] <= 50
    assert ft["gap"] > 0 and ft["studies"] == ["r2026-table1"] and ft["published"] == 0.9276
    ae = by_name["reference-autoencoder"]
    assert ae["metric"] == "val_loss" and ae["best"] == min(r["val_loss"] for r in store.manifest(ae["id"])["history"])


def test_a_run_shared_by_two_studies_reads_as_the_trial_of_the_study_looked_at():
    store = RunStore(DEFAULT_DIR)
    studies = [load_study("r2026-table1"), load_study("beyond-recipe")]
    rows, _ = runs_table(store, studies)
    scratch = next(spec for t, seed, spec in studies[0].specs() if t.label == "scratch" and seed == 0)
    shared = next(r for r in rows if r["id"] == store.find(scratch))
    assert shared["studies"] == ["beyond-recipe", "r2026-table1"]
    assert shared["trial"] == "r2026-table1: scratch" and shared["published"] == 0.926   # the one with a figure
    beyond = {r["id"]: r for r in in_study(rows, "beyond-recipe")}
    assert beyond[shared["id"]]["trial"] == "beyond-recipe: scratch: reference recipe"
    assert beyond[shared["id"]]["published"] is None and shared["trial"] == "r2026-table1: scratch"  # a copy
    table_one = {r["id"]: r for r in in_study(rows, "r2026-table1")}
    assert table_one[shared["id"]]["trial"] == "r2026-table1: scratch" and set(table_one) < {r["id"] for r in rows}


def test_factors_and_seed_groups():
    from fmnist_core.presets import reference_specs
    a = reference_specs()["scratch"]
    b = a.with_overrides({"seed": 1})
    c = a.with_overrides({"lr": 1e-2})
    assert spec_factors([a.to_dict(), b.to_dict(), c.to_dict()]) == ["optimizer.lr", "seed"]
    groups = seed_groups([{"id": k, "spec_flat": flat_spec(v.to_dict())} for k, v in (("a", a), ("b", b), ("c", c))])
    assert sorted(map(sorted, groups.values())) == [["a", "b"], ["c"]]
    rows = [{"run": "a", "epoch": 1, "split": "train", "value": 1.0},
            {"run": "b", "epoch": 1, "split": "train", "value": 3.0}]
    (g,) = band(rows, {"ab": ["a", "b"]})
    assert (g["mean"], g["lo"], g["hi"], g["n"]) == (2.0, 1.0, 3.0, 2)


def test_curves_are_long_rows_per_split(trained_store, tiny_ids):
    m = {rid: trained_store.manifest(rid) for rid in (tiny_ids["scratch"], tiny_ids["finetune"])}
    rows = curves(m, "accuracy")
    assert len(rows) == 2 * 2 * 2 and {r["split"] for r in rows} == {"train", "validation"}
