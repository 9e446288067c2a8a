"""File primitives of the run store (a leaf: it imports nothing of the package).

Atomic writes, hashes, npz caches without pickles, safetensors (de)serialisation of weights and
optimizer state. The run store itself (folders, manifests, locks) is runs.py.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save as st_save



class CheckpointError(RuntimeError):
    """A checkpoint is missing, tampered with, or does not fit the code; the message names the file."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cached_arrays(path: Path, compute: Callable[[], dict[str, np.ndarray]],
                  valid: Callable[[dict[str, np.ndarray]], bool] = lambda arrays: True) -> dict[str, np.ndarray]:
    """The arrays of the npz cache file `path`, else `compute()`'s, written there atomically.

    A missing, damaged or not `valid` file is computed again; a read-only folder only loses the cache.
    npz without pickles, so a cache file from elsewhere cannot run code. What is returned is what
    the file holds (dtypes included), computed or read.
    """
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if valid(arrays):
                return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):   # damaged: compute again
            pass
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    try:
        atomic_write(path, buf.getvalue())
    except OSError:
        pass                              # read-only store: computed again next time
    return arrays


def state_to_bytes(state: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().to("cpu").contiguous() for k, v in state.items()})


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's state as flat tensors (for safetensors) plus its JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if val is None:               # SGD without momentum keeps a None buffer
                continue
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"{pid}.{key}"] = t
    return tensors, {"param_groups": sd["param_groups"]}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = t
    return {"state": state, "param_groups": meta["param_groups"]}
