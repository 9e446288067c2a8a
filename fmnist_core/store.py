"""Checkpoint store: safetensors weights plus one JSON manifest per model, never pickles.

Layout of a store folder (default `checkpoints/`):

    <model>/manifest.json              config, per-epoch history, data fingerprint, sha256 of each file
    <model>/weights.eNNN-x.safetensors weights after epoch NNN; the manifest's roles say which file is
                                       `last`, `best` (best validation epoch) and `snap.eNNN`
                                       (autoencoder snapshots kept for the app)
    <model>/optim.eNNN-x.safetensors   Adam state, to resume (dropped once training is complete)
    train.lock                         held by the one training process alive

Every file is written to a temporary name, flushed and renamed; the manifest is written last and
is the only thing that says which files are current, so a run killed at any moment leaves the
previous manifest pointing at complete files. Files no manifest names are removed afterwards.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import MODEL_NAMES, ModelConfig, TrainConfig
from .models import build

FORMAT_VERSION = 1
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


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


def check_writable(root: Path) -> None:
    """Fail early, with a clear message, where checkpoints cannot be written."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoints to {root}: {e.strerror or e}. "
                              "Choose a writable folder with --checkpoints.") from e


def _state_to_bytes(state: dict[str, torch.Tensor]) -> bytes:
    return st_save({k: v.detach().to("cpu").contiguous() for k, v in state.items()})


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's state as flat tensors (for safetensors) plus its JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"{pid}.{key}"] = t
    return tensors, {"param_groups": sd["param_groups"]}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = t
    return {"state": state, "param_groups": meta["param_groups"]}


class CheckpointStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else DEFAULT_DIR

    # ---- reading ------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        if name not in MODEL_NAMES:
            raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
        return self.root / name

    def manifest(self, name: str) -> dict | None:
        """The manifest as stored, or None where the model was never trained here."""
        path = self.model_dir(name) / "manifest.json"
        if not path.is_file():
            return None
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path} is not valid JSON ({e}); retrain {name} or restore the file") from e
        if m.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path} has format {m.get('format_version')}; this code reads {FORMAT_VERSION}")
        return m

    def read_file(self, name: str, role: str, manifest: dict | None = None) -> dict[str, torch.Tensor]:
        """Tensors of one file named in the manifest (role: last, best, optim, snap.eNNN), verified."""
        m = manifest or self.manifest(name)
        if m is None:
            raise CheckpointError(f"no checkpoint for {name} in {self.root}; run `python -m fmnist_core train`")
        fname = m["roles"].get(role)
        if fname is None:
            raise CheckpointError(f"{name} has no {role!r} file in {self.model_dir(name)}")
        path = self.model_dir(name) / fname
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{path} is missing or unreadable ({e.strerror}); retrain {name}") from e
        if sha256_bytes(data) != m["files"].get(fname):
            raise CheckpointError(f"{path} does not match its manifest (sha256 differs): the file was "
                                  f"changed or damaged. Nothing was loaded from it; retrain {name}.")
        try:
            return st_load(data)
        except (SafetensorError, ValueError) as e:
            raise CheckpointError(f"{path} is not a valid safetensors file ({e})") from e

    def load_model(self, name: str, which: str = "best", device: str | torch.device = "cpu") -> torch.nn.Module:
        """Rebuild a model from its manifest's config and load verified weights, in eval mode."""
        m = self.manifest(name)
        if m is None:
            raise CheckpointError(f"no checkpoint for {name} in {self.root}; run `python -m fmnist_core train`")
        return self._build(name, m, self.read_file(name, which, m)).to(device).eval()

    def _build(self, name: str, m: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
        """The model the manifest's config describes, holding `state`; refused where they do not fit."""
        model = build(m["kind"], ModelConfig.from_dict(m["model_config"]))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{self.model_dir(name)}: the weights do not fit the architecture in this "
                                  f"code ({str(e).splitlines()[0]}); retrain {name}") from e
        return model

    def verify(self, name: str) -> dict:
        """Check every file of a model against its manifest, and that its weights fit; returns the manifest."""
        m = self.manifest(name)
        if m is None:
            raise CheckpointError(f"no checkpoint for {name} in {self.root}")
        for role in m["roles"]:
            state = self.read_file(name, role, m)
            if role != "optim":
                self._build(name, m, state)
        return m

    def status(self) -> dict[str, dict]:
        """Per model: trained epochs, completeness and any error, without loading weights."""
        out = {}
        for name in MODEL_NAMES:
            try:
                m = self.manifest(name)
            except CheckpointError as e:
                out[name] = {"exists": True, "error": str(e)}
                continue
            if m is None:
                out[name] = {"exists": False}
                continue
            out[name] = {"exists": True, "epochs_done": len(m["history"]), "epochs": m["train_config"]["epochs"],
                         "complete": m["complete"], "best_epoch": m.get("best_epoch")}
        return out

    # ---- writing ------------------------------------------------------------------------
    def save_epoch(self, name: str, kind: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                   model_cfg: ModelConfig, train_cfg: TrainConfig, history: list[dict], best_epoch: int,
                   data_fingerprint: str, provenance: dict, is_best: bool, snapshot: bool) -> dict:
        """Record one finished epoch: write the new files, then the manifest, then drop stale files."""
        folder = self.model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        epoch = len(history)
        # Epoch 1 starts a new run: nothing of an older run's manifest carries over.
        old = (self.manifest(name) if epoch > 1 else None) or {"files": {}, "roles": {}}
        complete = epoch >= train_cfg.epochs
        roles = {r: f for r, f in old["roles"].items() if r.startswith("snap.")}
        files = {f: old["files"][f] for f in roles.values()}

        def put(stem: str, data: bytes) -> str:
            # A fresh token per write: a file some manifest names is never overwritten.
            fname = f"{stem}.e{epoch:03d}-{secrets.token_hex(3)}.safetensors"
            atomic_write(folder / fname, data)
            files[fname] = sha256_bytes(data)
            return fname

        # One weights file per epoch; the roles last, best and snap.eNNN may all point at it.
        roles["last"] = put("weights", _state_to_bytes(model.state_dict()))
        if is_best or "best" not in old["roles"]:
            roles["best"] = roles["last"]
        else:
            roles["best"] = old["roles"]["best"]
            files[roles["best"]] = old["files"][roles["best"]]
        if snapshot:
            roles[f"snap.e{epoch:03d}"] = roles["last"]
        opt_meta = None
        if optimizer is not None and not complete:
            tensors, opt_meta = optimizer_to_tensors(optimizer)
            roles["optim"] = put("optim", st_save({k: v.contiguous() for k, v in tensors.items()}))
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "kind": kind,
            "model_config": model_cfg.to_dict(),
            "train_config": train_cfg.to_dict(),
            "history": history,
            "best_epoch": best_epoch,
            "complete": complete,
            "data_fingerprint": data_fingerprint,
            "optimizer": opt_meta,
            "roles": roles,
            "files": files,
            "provenance": provenance,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write(folder / "manifest.json", json.dumps(manifest, indent=1).encode())
        for stale in folder.glob("*.safetensors"):
            if stale.name not in files:
                stale.unlink(missing_ok=True)
        for tmp in folder.glob(".*.tmp"):
            # Left by a run killed mid-write; no manifest names them.
            tmp.unlink(missing_ok=True)
        return manifest

    def remove(self, name: str) -> None:
        folder = self.model_dir(name)
        if folder.is_dir():
            for f in folder.iterdir():
                if f.is_file():
                    f.unlink()
