import json
import os
import stat

import numpy as np
import pytest
import torch

from fmnist_core import CheckpointError, CheckpointStore
from fmnist_core.store import atomic_write, cached_arrays, check_writable


def test_round_trip_rebuilds_the_model_from_its_manifest(trained_store):
    m = trained_store.manifest("finetune")
    assert m["model_config"]["channels"] == [32, 64, 64]
    assert set(m["roles"]) >= {"last", "best"}
    for fname, digest in m["files"].items():
        assert len(digest) == 64 and (trained_store.model_dir("finetune") / fname).is_file()
    a = trained_store.load_model("finetune", "last")
    b = trained_store.load_model("finetune", "last")
    x = torch.randn(3, 1, 28, 28)
    assert not a.training
    assert torch.equal(a(x), b(x))
    ae = trained_store.manifest("autoencoder")
    assert any(r.startswith("snap.") for r in ae["roles"])   # snapshots kept for the app


def test_no_pickles_anywhere(trained_store):
    for path in trained_store.root.rglob("*"):
        if path.is_file():
            assert path.suffix in (".safetensors", ".json", ".lock", ".npz", ""), path
            assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"


def _copy_store(src: CheckpointStore, dst) -> CheckpointStore:
    import shutil
    shutil.copytree(src.root, dst)
    return CheckpointStore(dst)


def test_tampered_file_is_refused_with_its_name(trained_store, tmp_path):
    store = _copy_store(trained_store, tmp_path / "s")
    m = store.manifest("scratch")
    path = store.model_dir("scratch") / m["roles"]["last"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        store.load_model("scratch", "last")
    assert path.name in str(e.value) and "does not match its manifest" in str(e.value)
    with pytest.raises(CheckpointError):
        store.verify("scratch")


def test_architecture_mismatch_is_refused(trained_store, tmp_path):
    store = _copy_store(trained_store, tmp_path / "s")
    mpath = store.model_dir("scratch") / "manifest.json"
    m = json.loads(mpath.read_text())
    m["model_config"]["hidden"] = 64
    mpath.write_text(json.dumps(m))
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        store.load_model("scratch")


def test_missing_and_unreadable_manifests_say_so(tmp_path):
    store = CheckpointStore(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint for scratch"):
        store.load_model("scratch")
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        store.manifest("scratch")
    assert "error" in store.status()["scratch"]


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")
    atomic_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_folder_gives_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        check_writable(ro)


def test_unwritable_location_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")   # a file where the folder should be: fails for root too
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        check_writable(blocker / "checkpoints")


def test_cached_arrays_compute_once_recompute_damage_and_survive_an_unwritable_folder(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5, dtype=np.uint8)}

    path = tmp_path / "cache" / "x.npz"
    first = cached_arrays(path, compute)
    again = cached_arrays(path, compute)
    assert len(calls) == 1 and np.array_equal(first["a"], again["a"]) and again["a"].dtype == np.uint8
    # Arrays the caller finds wrong, and a damaged file, are computed again (and rewritten).
    cached_arrays(path, compute, valid=lambda arrays: len(arrays["a"]) == 6)
    path.write_bytes(path.read_bytes()[:20])
    assert np.array_equal(cached_arrays(path, compute)["a"], np.arange(5)) and len(calls) == 3
    assert np.array_equal(cached_arrays(path, compute)["a"], np.arange(5)) and len(calls) == 3
    # Where the cache cannot be written (a file where its folder should be), the arrays still come back.
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert np.array_equal(cached_arrays(blocker / "x.npz", compute)["a"], np.arange(5)) and len(calls) == 4
