"""The run store and everything loaded from it, cached: the only module with `st.cache_*`.

Models are cached with `st.cache_resource` (one copy shared by every session) and arrays with
`st.cache_data`; each cache key includes `run_key(run_id)` (the run's folder and its manifest's
mtime), so a new training epoch is picked up without a restart and two stores never share an entry.
Where something is missing or damaged, the public function shows a message saying how to get it
and returns None (or leaves the run out), so a page only checks for None.
"""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from fmnist_app.images import thumbnail_uri
from fmnist_core import CLASS_NAMES, CheckpointError, DataError, RunStore, load_fashion_mnist
from fmnist_core.presets import PRESETS, reference_runs

# One intra-op thread per app process: a single sketch runs in ~2 ms instead of ~270 ms when the
# cores are busy (a training run, other sessions), and concurrent sessions don't fight over them.
torch.set_num_threads(1)


def store() -> RunStore:
    return RunStore()               # $FMNIST_CHECKPOINTS if set, else checkpoints/ and the user folder


def run_key(run_id: str) -> str:
    """Changes whenever the run's manifest is rewritten: part of every cache key below."""
    folder = store().folder(run_id)
    if folder is None:
        return f"{run_id}@-"
    try:
        return f"{folder}@{(folder / 'manifest.json').stat().st_mtime_ns}"
    except OSError:
        return f"{folder}@-"


def store_fingerprint() -> tuple:
    """Changes when any run's manifest is written, a run starts or stops training, or a study runs."""
    s = store()
    marks = []
    for rid in s.run_ids():
        folder = s.folder(rid)
        try:
            marks.append((rid, (folder / "manifest.json").stat().st_mtime_ns))
        except (OSError, TypeError):
            marks.append((rid, 0))
    return tuple(marks), tuple(s.training_now()), tuple(str(r) for r in s.roots)


# ---- runs: what the store holds ----------------------------------------------------------------
def reference_ids() -> dict[str, str]:
    """{"autoencoder": id, "scratch": id, ...}: the reference runs (or the store's runs of their names)."""
    return reference_runs(store())


def input_choice(kind: str):
    """The classifier chosen for a "drawing" or an "upload" (fmnist_core.inputs.Choice): run id, label, why."""
    from fmnist_core import inputs
    table = inputs.benchmark_table()
    return inputs.for_drawings(store(), table) if kind == "drawing" else inputs.for_uploads(store(), table)


def summaries() -> list[dict]:
    """Every run's summary (id, name, kind, status, epochs_done, epochs, ...); damaged ones carry `error`."""
    return store().summaries()


def label(run_id: str) -> str:
    """A reference run by its scheme (as in the published table), any other run by its id."""
    return {rid: name for name, rid in reference_ids().items()}.get(run_id, run_id)


def missing_models_message(detail: str) -> None:
    """Say what is missing or damaged (naming the file) and offer the way to retrain."""
    damaged = "does not match" in detail or "not valid" in detail or "do not fit" in detail
    st.warning(
        ("A checkpoint file is damaged or was changed, so nothing was loaded from it. " if damaged else
         "This page needs trained checkpoints (runs). The repository ships them in `checkpoints/`. ")
        + "Train on the **Training** page or with `python -m fmnist_core train`.\n\n"
        f"Details: {detail}")
    st.page_link("pages/training.py", label="Go to Training", icon=":material/monitoring:")


def manifest(run_id: str) -> dict | None:
    """The run's manifest, or None (after an error naming the file where it is damaged)."""
    try:
        return store().manifest(run_id)
    except CheckpointError as e:
        st.error(f"{run_id}: {e}")
        return None


def run_manifests(run_ids: list[str]) -> dict[str, dict]:
    """{id: manifest} of these runs (the store caches manifests by mtime); damaged ones left out."""
    s, out = store(), {}
    for rid in run_ids:
        try:
            m = s.manifest(rid)
        except CheckpointError:
            continue
        if m is not None:
            out[rid] = m
    return out


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


# ---- models ----------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading a model…", max_entries=32)
def _model(key: str, run_id: str, which: str):
    return store().load_model(run_id, which)


def model(run_id: str, which: str = "last"):
    """The run's network (weights verified against the manifest), or None after saying what is wrong."""
    try:
        return _model(run_key(run_id), run_id, which)
    except CheckpointError as e:
        missing_models_message(str(e))
        return None


def autoencoder(run_id: str):
    m = model(run_id)
    if m is not None and m.kind != "autoencoder":
        st.warning(f"`{run_id}` is a {m.kind}, not an autoencoder.")
        return None
    return m


@st.cache_resource(show_spinner="Loading models…", max_entries=8)
def _predictor(keys: tuple, classifiers: tuple[tuple[str, str], ...], ae: str | None):
    from fmnist_core.inference import Predictor
    return Predictor.from_runs(store(), dict(classifiers), ae)


def predictor(classifiers: dict[str, str], ae: str | None = None):
    """A Predictor of these classifier runs ({label: id}) and autoencoder run, or None after a message."""
    ids = (*classifiers.values(), *([ae] if ae else []))
    try:
        return _predictor(tuple(map(run_key, ids)), tuple(classifiers.items()), ae)
    except CheckpointError as e:
        missing_models_message(str(e))
        return None


# ---- derived arrays (cached per run) ----------------------------------------------------------
@st.cache_data(show_spinner="Classifying the test set (once per run)…", max_entries=32)
def _test_predictions(key: str, run_id: str) -> np.ndarray:
    from fmnist_core.evaluate import cached_predictions
    images, _ = test_arrays()
    return cached_predictions(store(), run_id, images, "last", _model(key, run_id, "last"))


def test_predictions(runs: dict[str, str]) -> dict[str, np.ndarray]:
    """{label: predicted classes of the 10,000 test images} for the classifier runs ({label: id}) that
    load; one message names every run that does not (missing or damaged: nothing runs from it)."""
    if test_set() is None:
        return {}
    out, problems = {}, []
    for name, rid in runs.items():
        try:
            out[name] = _test_predictions(run_key(rid), rid)   # loading the model verifies the weights
        except CheckpointError as e:
            problems.append(str(e))
    if problems:
        missing_models_message("\n\n".join(problems))
    return out


@st.cache_data(show_spinner="Reconstructing…", max_entries=64)
def _reconstructions(key: str, run_id: str, role: str, indices: tuple[int, ...]) -> np.ndarray:
    from fmnist_core.evaluate import reconstruct
    from fmnist_core.inference import output_to_unit
    images, _ = test_arrays()
    ae = _model(key, run_id, role)
    return output_to_unit(ae, reconstruct(ae, torch.from_numpy(images[list(indices)])))[:, 0].numpy()


def reconstructions(run_id: str, role: str, indices: tuple[int, ...]) -> np.ndarray:
    """(N, 28, 28) in [0, 1]: the run's `role` weights (last, snap.eNNN) on these test images."""
    return _reconstructions(run_key(run_id), run_id, role, indices)


@st.cache_resource(show_spinner="Computing the UMAP map of the test set (once per run)…", max_entries=8)
def _latent_map(key: str, run_id: str):
    from fmnist_core.latent import latent_map
    images, labels = test_arrays()
    return latent_map(store(), run_id, _model(key, run_id, "last"), images, labels)


def latent_map(run_id: str):
    """The UMAP map of an autoencoder run's test codes, or None after a message."""
    if autoencoder(run_id) is None or test_set() is None:
        return None
    return _latent_map(run_key(run_id), run_id)


@st.cache_data(show_spinner="Preparing the map…", max_entries=8)
def _map_frame(key: str, run_id: str, shown: int):
    import pandas as pd
    images, labels = test_arrays()
    lmap = _latent_map(key, run_id)
    idx = np.random.default_rng(0).permutation(len(labels))[:shown]
    return pd.DataFrame({"x": lmap.coords[idx, 0], "y": lmap.coords[idx, 1], "index": idx,
                         "class": [CLASS_NAMES[c] for c in labels[idx]],
                         "image": [thumbnail_uri(images[i]) for i in idx]})


def map_frame(run_id: str, shown: int):
    """`shown` random test points of the run's map, with class names and thumbnails (a DataFrame)."""
    return _map_frame(run_key(run_id), run_id, shown)


def encode(run_id: str, images: np.ndarray) -> np.ndarray:
    from fmnist_core.latent import encode as _encode
    return _encode(_model(run_key(run_id), run_id, "last"), images)


def decode(run_id: str, codes: np.ndarray) -> np.ndarray:
    from fmnist_core.latent import decode as _decode
    return _decode(_model(run_key(run_id), run_id, "last"), codes)


def code_shape(run_id: str) -> str:
    """The code's shape as text: '64×7×7' for the reference, '256' for a linear bottleneck."""
    return "×".join(map(str, encode(run_id, np.zeros((1, 28, 28), np.uint8)).shape[1:]))


# ---- studies and the runs table --------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _studies() -> list:
    # A resource, not data: one set of Study objects (immutable, with their specs memoized) for every
    # session, not a copy per call.
    from fmnist_core.study import list_studies
    return list_studies()


def studies() -> list:
    """Every study file of studies/ (Study objects)."""
    return _studies()


def study_named(name: str):
    """The Study of studies/NAME.toml (among `studies()`)."""
    return next(s for s in _studies() if s.name == name)


@st.cache_data(show_spinner="Reading the study's runs…", max_entries=16)
def _study_table(name: str, with_predictions: bool, fingerprint: tuple, size: tuple | None) -> tuple[list[dict], list]:
    from fmnist_core.sizes import size_to_show
    from fmnist_core.study import table
    study, runs = study_named(name), store()
    epochs, subset, notes = size_to_show(study, runs) if size is None else (*size, [])
    images, labels = test_arrays() if with_predictions else (None, None)
    return table(study, runs, images, labels, epochs, subset), notes


def study_table(name: str, size: tuple | None = (None, None)) -> tuple[list[dict], list[str]]:
    """(study.table of the study `name` on the store, notes), cached until a run changes. `size`
    (epochs, subset): the full size by default; None: the size `study table NAME` shows (the full
    size, or a quick one where only that has runs), the notes saying which. The shirt counts of a
    study that reports them need the data set; without it those cells stay empty."""
    from fmnist_core.study import PREDICTION_METRICS
    study = study_named(name)
    needs = any(m in PREDICTION_METRICS for m in study.metrics)
    return _study_table(name, needs and test_set() is not None, store_fingerprint(), size)


@st.cache_data(show_spinner="Reading the runs…", max_entries=4)
def _compare_rows(fingerprint: tuple) -> tuple[list[dict], list[str]]:
    from fmnist_core.compare import runs_table
    from fmnist_core.study import study_sizes
    s = store()
    all_studies = _studies()
    return runs_table(s, all_studies, sizes={x.name: study_sizes(s, x.name) for x in all_studies})


def compare_rows() -> tuple[list[dict], list[str]]:
    """(rows, factors) of compare.runs_table over every run of the store, cached until a run changes."""
    return _compare_rows(store_fingerprint())


@st.cache_data(show_spinner="Drawing…", max_entries=32)
def _linked_views(fingerprint: tuple, ids: tuple, selected: tuple, metric: str, colour_by: str, grouped: bool):
    from fmnist_app.compare_views import linked_views as views
    return views(compare_rows()[0], run_manifests, ids, selected, metric, colour_by, grouped)


def linked_views(ids: tuple, selected: tuple, metric: str, colour_by: str, grouped: bool):
    """The Compare page's linked views of these runs (compare_views.linked_views), kept per store state
    and choices: building the Altair spec takes about a second."""
    return _linked_views(store_fingerprint(), ids, selected, metric, colour_by, grouped)


def recipe_result() -> dict:
    """The better recipe (preset recipe-scratch) over seeds 0-2 in the store: mean, std, seeds, run ids."""
    from fmnist_core.study import over_seeds
    return over_seeds(store(), PRESETS["recipe-scratch"].spec)


def table_one_over_seeds() -> dict[str, dict]:
    """{scheme: {"mean", "std" (None under 2 seeds), "seeds"}}: the 2026 Table I's last-epoch test
    accuracy over the seeds of the study r2026-table1 in the store (test MSE for the autoencoder)."""
    out = {}
    for row in study_table("r2026-table1")[0]:           # the full size: the published protocol
        key = "final_test_acc" if row["label"] != "autoencoder" else "test_mse"
        out[row["label"]] = {"mean": row["ours"].get(key), "std": row["std"].get(key), "seeds": row["seeds"]}
    return out
