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


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_folder_gives_a_clear_error(tmp_path):
    from fmnist_core import RunStore
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        RunStore(ro).write_root


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
