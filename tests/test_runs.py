"""The run store: one folder per run, manifests verified on load, complete runs never written again."""
import json
import shutil

import pytest
import torch

from fmnist_core import CheckpointError, RunStore
from fmnist_core.runs import DEFAULT_DIR, history_only
from fmnist_core.store import atomic_write

from conftest import tiny_specs


def _copy(store: RunStore, dst) -> RunStore:
    shutil.copytree(store.root, dst)
    return RunStore(dst)


def test_round_trip_rebuilds_the_model_from_its_manifest(trained_store, tiny_ids):
    rid = tiny_ids["finetune"]
    m = trained_store.manifest(rid)
    assert m["id"] == rid and m["spec"]["kind"] == "classifier" and m["spec"]["epochs"] == 2
    assert set(m["roles"]) >= {"last", "best"}
    for fname, digest in m["files"].items():
        assert len(digest) == 64 and (trained_store.folder(rid) / fname).is_file()
    a, b = trained_store.load_model(rid, "last"), trained_store.load_model(rid, "last")
    x = torch.randn(3, 1, 28, 28)
    assert not a.training and torch.equal(a(x), b(x))
    ae = trained_store.manifest(tiny_ids["autoencoder"])
    assert any(r.startswith("snap.") for r in ae["roles"])   # snapshots kept for the app
    assert m["provenance"]["encoder_source"] == {"run": tiny_ids["autoencoder"], "file": ae["roles"]["last"]}


def test_summaries_say_what_runs_list(trained_store, tiny_ids):
    rows = {r["id"]: r for r in trained_store.summaries()}
    assert set(rows) == set(tiny_ids.values())
    ft = rows[tiny_ids["finetune"]]
    assert (ft["kind"], ft["status"], ft["epochs_done"], ft["epochs"]) == ("classifier", "complete", 2, 2)
    assert ft["read_only"] and ft["parent"] == tiny_ids["autoencoder"]
    assert ft["test_accuracy"] == trained_store.manifest(tiny_ids["finetune"])["history"][-1]["test_acc"]
    assert rows[tiny_ids["autoencoder"]]["test_mse"] > 0 and rows[tiny_ids["scratch"]]["parent"] is None


def test_resolve_takes_ids_prefixes_and_names(trained_store, tiny_ids):
    rid = tiny_ids["scratch"]
    assert trained_store.resolve(rid) == rid == trained_store.resolve(rid[:-3]) == trained_store.resolve("reference-scratch")
    with pytest.raises(CheckpointError, match="matches 3 runs"):
        trained_store.resolve("reference-f")
    with pytest.raises(CheckpointError, match="no run 'nope'"):
        trained_store.resolve("nope")


def test_no_pickles_anywhere(trained_store):
    for path in trained_store.root.rglob("*"):
        if path.is_file():
            assert path.suffix in (".safetensors", ".json", ".lock", ".npz"), path
            assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"


def test_tampered_file_is_refused_with_its_name(trained_store, tiny_ids, tmp_path):
    store = _copy(trained_store, tmp_path / "s")
    rid = tiny_ids["scratch"]
    path = store.folder(rid) / store.manifest(rid)["roles"]["last"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        store.load_model(rid, "last")
    assert path.name in str(e.value) and "does not match its manifest" in str(e.value)
    with pytest.raises(CheckpointError):
        store.verify(rid)


def test_architecture_mismatch_is_refused(trained_store, tiny_ids, tmp_path):
    store = _copy(trained_store, tmp_path / "s")
    rid = tiny_ids["scratch"]
    mpath = store.folder(rid) / "manifest.json"
    m = json.loads(mpath.read_text())
    m["spec"]["head"]["hidden"] = [64]
    mpath.write_text(json.dumps(m))
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        store.load_model(rid)


def test_missing_and_unreadable_manifests_say_so(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(CheckpointError, match="no run reference-scratch-x"):
        store.load_model("reference-scratch-x")
    (tmp_path / "broken-run").mkdir()
    (tmp_path / "broken-run" / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        store.manifest("broken-run")
    assert "error" in store.summaries()[0]


def test_a_complete_run_is_never_written_again(trained_store, tiny_ids):
    with pytest.raises(CheckpointError, match="complete and is never modified"):
        trained_store.writable_folder(tiny_ids["scratch"])


def test_the_default_store_reads_the_shipped_runs_and_the_user_folder_and_writes_to_one(tmp_path, monkeypatch):
    monkeypatch.delenv("FMNIST_CHECKPOINTS", raising=False)
    monkeypatch.setenv("FMNIST_USER_RUNS", str(tmp_path / "user"))
    store = RunStore()
    assert store.roots == [DEFAULT_DIR, tmp_path / "user"]
    # Where checkpoints/ cannot be written (an installed, shared copy), new runs go to the user folder.
    monkeypatch.setattr("fmnist_core.runs.is_writable", lambda root: root != DEFAULT_DIR)
    assert RunStore().write_root == tmp_path / "user"


def test_an_explicit_folder_that_cannot_be_written_is_refused_not_replaced(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")               # a file where the folder should be: fails for root too
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        RunStore(blocker / "ck").write_root


def test_find_looks_up_a_spec_under_any_name(trained_store, tiny_ids):
    spec = tiny_specs()["scratch"]
    assert trained_store.find(spec) == tiny_ids["scratch"]
    assert trained_store.find(spec.replace(name="renamed")) == tiny_ids["scratch"]
    assert trained_store.find(spec.replace(seed=5)) is None


def test_find_sees_runs_added_after_its_index_was_built(trained_store, tiny_ids, tmp_path):
    store = _copy(trained_store, tmp_path / "store")
    spec = tiny_specs()["scratch"].replace(name="renamed")
    assert store.find(spec) == tiny_ids["scratch"]                 # builds the hash index
    other = spec.replace(seed=5)
    folder = store.root / f"elsewhere-{other.spec_hash}"
    folder.mkdir()
    assert store.find(other) is None                               # a folder with no manifest yet
    shutil.copy(store.folder(tiny_ids["scratch"]) / "manifest.json", folder / "manifest.json")
    assert store.find(other) == folder.name                        # its manifest landed later
    shutil.rmtree(folder)
    assert store.find(other) is None


def test_a_run_shipped_as_its_history_only_keeps_its_figures_and_says_where_its_weights_went(
        trained_store, tiny_ids, tmp_path):
    shipped = RunStore(tmp_path / "shipped")
    rid = tiny_ids["scratch"]
    m = trained_store.manifest(rid)
    shipped.add_history_only(m, "weights left out to keep the folder small; retrain with `study run X`")
    assert [p.name for p in shipped.folder(rid).iterdir()] == ["manifest.json"]
    row, full = shipped.summary(rid), trained_store.summary(rid)
    assert row["has_weights"] is False and full["has_weights"] is True
    assert (row["status"], row["test_accuracy"]) == ("complete", full["test_accuracy"])
    kept = shipped.manifest(rid)
    assert kept["history"] == m["history"] and kept["weights_left_out"]["files"] == m["files"]
    shipped.verify(rid)                                    # only the manifest is there to check
    with pytest.raises(CheckpointError, match=r"history only: weights left out .*`study run X`"):
        shipped.load_model(rid)
    with pytest.raises(CheckpointError, match="history only"):
        shipped.copy_weights_from(rid, tiny_specs()["scratch"].replace(epochs=3))
    with pytest.raises(CheckpointError, match="never replaced"):
        shipped.add_history_only(m, "again")
    with pytest.raises(CheckpointError, match="not complete"):
        history_only(dict(m, complete=False), "a partial run")


def test_a_run_shipped_without_its_best_epoch_loads_its_last_and_names_what_is_missing(
        trained_store, tiny_ids, tmp_path):
    m = dict(trained_store.manifest(tiny_ids["scratch"]), roles={"last": "w.e003.safetensors",
             "best": "w.e002.safetensors"}, files={"w.e003.safetensors": "c3", "w.e002.safetensors": "c2"})
    out = history_only(m, "kept small", roles=("best",))
    assert out["roles"] == {"last": "w.e003.safetensors"} and out["files"] == {"w.e003.safetensors": "c3"}
    assert out["weights_left_out"] == {"reason": "kept small", "roles": {"best": "w.e002.safetensors"},
                                       "files": {"w.e002.safetensors": "c2"}}
    with pytest.raises(CheckpointError, match=r"no \['optim'\] weights"):
        history_only(m, "x", roles=("optim",))
    rid = tiny_ids["scratch"]                                  # end to end, on a real run's files
    store = _copy(trained_store, tmp_path / "store")
    real = store.manifest(rid)
    atomic_write(store.folder(rid) / "manifest.json",
                 json.dumps(history_only(dict(real, roles=dict(real["roles"], best="gone.safetensors"),
                                              files=dict(real["files"], **{"gone.safetensors": "0"})),
                                         "kept small", roles=("best",))).encode())
    store.verify(rid)
    assert store.summary(rid)["has_weights"] is True and store.load_model(rid, "last") is not None
    with pytest.raises(CheckpointError, match=r"without its 'best' weights: kept small\. Its last weights"):
        store.load_model(rid, "best")
