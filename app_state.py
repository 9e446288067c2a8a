"""The app's only bridge to `fmnist_core`: cached loaders and the guards pages share.

Pages call these functions and never import torch. Models are cached with `st.cache_resource`
(one copy shared by every session) and arrays with `st.cache_data`; each cache key includes a
stamp of the checkpoint manifests, so a new training epoch is picked up without a restart.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from fmnist_core import AUTOENCODER, CLASS_NAMES, CLASSIFIERS, CheckpointError, CheckpointStore, DataError
from fmnist_core import load_fashion_mnist
from fmnist_core.config import REFERENCE_RESULTS, SCHEME_DESCRIPTIONS
from fmnist_core.progress import read_progress
from fmnist_core.train import is_training


def _use_the_router() -> None:
    """Make a deep link opened first on a fresh server go through `streamlit_app.py`'s router.

    Streamlit starts in its legacy pages/-directory mode when a `pages/` folder sits beside the
    entry file, and leaves it only once `st.navigation` has run. A first visit to /confusion would
    run the page file alone (no page config, the folder's file names as navigation) for the whole
    server's life. This module is first imported during that run: switch the mode off and rerun.
    """
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_use_the_router()

# One intra-op thread per app process: a single sketch runs in ~2 ms instead of ~270 ms when the
# cores are busy (a training run, other sessions), and concurrent sessions don't fight over them.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent
CHECKPOINT_ENV = "FMNIST_CHECKPOINTS"

__all__ = ["CLASS_NAMES", "CLASSIFIERS", "AUTOENCODER", "REFERENCE_RESULTS", "SCHEME_DESCRIPTIONS"]


def store() -> CheckpointStore:
    return CheckpointStore(os.environ.get(CHECKPOINT_ENV) or None)


def stamp(name: str | None = None) -> str:
    """Changes whenever a manifest is rewritten: part of every cache key below."""
    root = store().root
    names = [name] if name else [AUTOENCODER, *CLASSIFIERS]
    parts = []
    for n in names:
        p = root / n / "manifest.json"
        parts.append(f"{n}:{p.stat().st_mtime_ns}" if p.exists() else f"{n}:-")
    return f"{root}|" + "|".join(parts)


# ---- data ------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading Fashion-MNIST…")
def _dataset():
    return load_fashion_mnist()


def dataset():
    """The data set, or None after showing how to get it."""
    try:
        return _dataset()
    except DataError as e:
        st.error(f"The Fashion-MNIST files are missing.\n\n{e}")
        return None


@st.cache_data(show_spinner=False)
def test_arrays() -> tuple[np.ndarray, np.ndarray]:
    d = _dataset()
    return d.test_images.numpy(), d.test_labels.numpy()


def test_set():
    """(images uint8 (10000, 28, 28), labels (10000,)) or None after an error message."""
    return test_arrays() if dataset() is not None else None


# ---- checkpoints -----------------------------------------------------------------------------
def status() -> dict[str, dict]:
    return store().status()


@st.cache_resource(show_spinner="Loading models…", max_entries=4)
def _predictor(key: str, which: str):
    from fmnist_core.inference import Predictor
    return Predictor.from_store(store(), which=which)


def predictor(which: str = "last"):
    """All four classifiers and the autoencoder, or None after saying what is missing."""
    try:
        return _predictor(stamp(), which)
    except CheckpointError as e:
        missing_models_message(str(e))
        return None


@st.cache_resource(show_spinner="Loading the autoencoder…", max_entries=16)
def _autoencoder(key: str, role: str):
    return store().load_model(AUTOENCODER, role)


def autoencoder(role: str = "last"):
    try:
        return _autoencoder(stamp(AUTOENCODER), role)
    except CheckpointError as e:
        missing_models_message(str(e))
        return None


def missing_models_message(detail: str) -> None:
    """Say what is missing or damaged (naming the file) and offer the way to retrain."""
    damaged = "does not match" in detail or "not valid" in detail or "do not fit" in detail
    st.warning(
        ("A checkpoint file is damaged or was changed, so nothing was loaded from it. " if damaged else
         "This page needs trained checkpoints. The repository ships them in `checkpoints/`. ")
        + "Retrain on the **Training** page or with `python -m fmnist_core train`.\n\n"
        f"Details: {detail}")
    st.page_link("pages/training.py", label="Go to Training to retrain", icon=":material/monitoring:")


def manifest(name: str) -> dict | None:
    try:
        return store().manifest(name)
    except CheckpointError as e:
        st.error(f"{name}: {e}")
        return None


def history(name: str) -> list[dict]:
    m = manifest(name)
    return m["history"] if m else []


# ---- derived arrays (cached per checkpoint) --------------------------------------------------
@st.cache_data(show_spinner="Classifying the test set (once per checkpoint)…", max_entries=4)
def _test_predictions(key: str, which: str) -> dict[str, np.ndarray]:
    from fmnist_core.evaluate import cached_predictions
    images, _ = test_arrays()
    return cached_predictions(store(), images, which, _predictor(key, which).classifiers)


def test_predictions(which: str = "last") -> dict[str, np.ndarray] | None:
    """Each classifier's predicted class for the 10,000 test images, or None after a message."""
    if predictor(which) is None or test_set() is None:      # the guard; it also loads the models once
        return None
    return _test_predictions(stamp(), which)


@st.cache_data(show_spinner="Reconstructing…", max_entries=64)
def reconstructions(key: str, role: str, indices: tuple[int, ...]) -> np.ndarray:
    images, _ = test_arrays()
    from fmnist_core.data import unscale
    from fmnist_core.evaluate import reconstruct
    rec = reconstruct(_autoencoder(key, role), torch.from_numpy(images[list(indices)]))
    return unscale(rec[:, 0]).numpy()


@st.cache_resource(show_spinner="Computing the UMAP map of the test set (once per checkpoint)…", max_entries=4)
def _latent_map(key: str):
    from fmnist_core.latent import latent_map
    images, labels = test_arrays()
    return latent_map(store(), _autoencoder(key, "last"), images, labels)


def latent_map():
    if autoencoder() is None or test_set() is None:
        return None
    return _latent_map(stamp(AUTOENCODER))


def encode(images: np.ndarray) -> np.ndarray:
    from fmnist_core.latent import encode as _encode
    return _encode(autoencoder(), images)


def decode(latents: np.ndarray) -> np.ndarray:
    from fmnist_core.latent import decode as _decode
    return _decode(autoencoder(), latents)


# ---- training runs ---------------------------------------------------------------------------
def training_state() -> dict:
    """{'running': bool, 'progress': dict | None} for the store the app shows."""
    s = store()
    return {"running": is_training(s), "progress": read_progress(s.root)}


def start_training(epochs: int, device: str, subset: int | None) -> str:
    """Start `python -m fmnist_core train` as a background process that outlives the page.

    The training lock decides: if another run holds it, this process exits at once and the page
    keeps showing the run already in progress.
    """
    s = store()
    if is_training(s):
        return "A run is already training; its progress is shown below."
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--epochs", str(epochs), "--device", device,
           "--checkpoints", str(s.root), "--quiet"]
    if subset:
        cmd += ["--subset", str(subset)]
    s.root.mkdir(parents=True, exist_ok=True)
    with open(s.root / "train.log", "ab") as log:
        subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    return "Training started."


def stop_training() -> str:
    import signal
    state = training_state()
    pid = (state["progress"] or {}).get("pid")
    if not state["running"] or not pid:
        return "No run is training."
    try:
        os.kill(int(pid), signal.SIGTERM)  # the run saves nothing half-done: finished epochs stay
    except OSError as e:
        return f"Could not stop process {pid}: {e.strerror}"
    return "Stopping: the current epoch is abandoned, finished epochs are kept."


# ---- small image helpers ---------------------------------------------------------------------
def tile(images: np.ndarray, cols: int, pad: int = 2, scale: int = 1) -> np.ndarray:
    """(N, 28, 28) in [0, 1] or uint8 -> one uint8 mosaic image with `cols` columns."""
    imgs = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    n = len(imgs)
    rows = max(1, -(-n // cols))
    h, w = imgs.shape[1:]
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad), np.float32) * 0.25
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    out = np.round(out * 255).astype(np.uint8)
    return np.kron(out, np.ones((scale, scale), np.uint8)) if scale > 1 else out


def thumbnail_uri(image: np.ndarray) -> str:
    """A 28x28 image as a PNG data URI (for Altair tooltips)."""
    import base64
    import io
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image if image.dtype == np.uint8 else np.round(image * 255).astype(np.uint8)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
