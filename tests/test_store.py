"""File primitives: atomic writes, writability checks, npz caches."""
import os
import stat

import numpy as np
import pytest

from fmnist_core import CheckpointError
from fmnist_core.store import atomic_write, cached_arrays


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")
    atomic_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.fixture
def refuse_writes(monkeypatch):
    """refuse_writes(folder): from then on the OS refuses every write under `folder` (EACCES), as a
    read-only mount or a root-owned installation does for a user. Root ignores file modes, and CI
    runs as root, so chmod alone would leave this path untested there."""
    import errno
    import io
    folders: list[str] = []

    def under(path) -> bool:
        if isinstance(path, int):
            return False
        p = os.path.abspath(os.fsdecode(path))
        return any(p == f or p.startswith(f + os.sep) for f in folders)

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    real_open, real_io_open, real_mkdir, real_access = os.open, io.open, os.mkdir, os.access
    real_replace, real_unlink = os.replace, os.unlink
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def os_open(path, flags, *a, **k):
        return refuse(path) if flags & writes and under(path) else real_open(path, flags, *a, **k)

    def io_open(file, mode="r", *a, **k):
        return refuse(file) if set(mode) & set("wax+") and under(file) else real_io_open(file, mode, *a, **k)

    def access(path, mode, *a, **k):
        return False if mode & os.W_OK and under(path) else real_access(path, mode, *a, **k)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "mkdir", lambda p, *a, **k: refuse(p) if under(p) else real_mkdir(p, *a, **k))
    monkeypatch.setattr(os, "replace", lambda a, b, **k: refuse(b) if under(b) else real_replace(a, b, **k))
    monkeypatch.setattr(os, "unlink", lambda p, **k: refuse(p) if under(p) else real_unlink(p, **k))
    return lambda folder: folders.append(os.path.abspath(folder))


def test_read_only_folder_gives_a_clear_error(tmp_path, refuse_writes):
    from fmnist_core import RunStore
    ro = tmp_path / "ro"
    ro.mkdir()
    refuse_writes(ro)
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        RunStore(ro).write_root
    with pytest.raises(PermissionError):              # the simulation holds for a plain write too
        (ro / "x").write_bytes(b"x")


def test_an_installed_read_only_store_is_read_never_written(trained_store, tiny_ids, tmp_path, monkeypatch,
                                                             refuse_writes):
    """The shipped checkpoints/ installed where the user cannot write: its runs are read and listed,
    even a partial one is read-only, and new runs and caches go to the user folder."""
    import json
    import shutil
    from fmnist_core import RunStore
    installed = tmp_path / "installed"
    shutil.copytree(trained_store.root, installed)
    partial = installed / tiny_ids["scratch"] / "manifest.json"
    partial.write_text(json.dumps({**json.loads(partial.read_text()), "complete": False}))
    (installed / tiny_ids["scratch"] / "train.lock").write_text("")   # left by the run's trainer
    user = tmp_path / "user"
    monkeypatch.delenv("FMNIST_CHECKPOINTS", raising=False)
    monkeypatch.setenv("FMNIST_USER_RUNS", str(user))
    monkeypatch.setattr("fmnist_core.runs.DEFAULT_DIR", installed)
    refuse_writes(installed)
    store = RunStore()
    assert store.roots == [installed, user]
    rows = {r["id"]: r for r in store.summaries()}
    assert sorted(rows) == sorted(tiny_ids.values())
    assert rows[tiny_ids["scratch"]]["status"] == "partial" and rows[tiny_ids["scratch"]]["read_only"]
    assert all(r["read_only"] for r in rows.values()) and store.training_now() == []
    store.verify(tiny_ids["finetune"])
    assert store.write_root == user and store.cache_path("x.npz") == user / "cache" / "x.npz"
    with pytest.raises(CheckpointError, match="does not write"):
        store.writable_folder(tiny_ids["scratch"])   # continuing it would write where it lives
    assert sorted(p.name for p in user.iterdir()) == []


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
