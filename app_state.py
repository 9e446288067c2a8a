"""The app's only bridge to `fmnist_core`: the run picker, cached loaders and the guards pages share.

Pages call these functions and never import torch or fmnist_core. Models are cached with
`st.cache_resource` (one copy shared by every session) and arrays with `st.cache_data`; each cache
key includes `run_key(run_id)` (the run's folder and its manifest's mtime), so a new training epoch
is picked up without a restart and two stores never share an entry.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import streamlit as st

ROUTER_FLAG = "_via_router"      # set in session state by streamlit_app.py, the router
DEEP_LINK = "_deep_link"         # (page file, query params) that a page run without the router asked for


def _use_the_router() -> None:
    """Send a page file run on its own, on a fresh server, through `streamlit_app.py`'s router.

    Streamlit starts in its legacy pages/-directory mode when a `pages/` folder sits beside the
    entry file, and leaves it for good once `st.navigation` has run. So a deep link such as
    /confusion opened first on a fresh server runs the page file alone: no page config, and the
    folder's file names as navigation. This module is first imported during that run. Without
    the router's mark in session state, remember the page and its query parameters and switch
    to the router, which switches on to them (`follow_deep_link`).
    """
    if not st.runtime.exists() or st.session_state.get(ROUTER_FLAG):    # bare imports (tests, scripts)
        return
    page = _calling_page() or Path(urlparse(st.context.url or "").path).name
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    st.session_state[DEEP_LINK] = (f"pages/{page}.py" if page and (ROOT / "pages" / f"{page}.py").is_file()
                                   else None, params)
    st.switch_page("streamlit_app.py", query_params=params)


def _calling_page() -> str | None:
    """The name of the pages/ file whose run imported this module (found on the stack), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent == ROOT / "pages":
            return path.stem
        frame = frame.f_back
    return None


def follow_deep_link() -> None:
    """In the router: go on to the page a deep link asked for before it came through here."""
    page, params = st.session_state.pop(DEEP_LINK, (None, None))
    if page:
        st.switch_page(page, query_params=params)


ROOT = Path(__file__).resolve().parent
_use_the_router()

import torch  # noqa: E402  (after the router check: a page run alone stops before the heavy import)

from fmnist_core import CLASS_NAMES, CheckpointError, DataError, RunStore, SpecError  # noqa: E402
from fmnist_core import load_fashion_mnist  # noqa: E402
from fmnist_core.compare import (METRIC_KIND, band, curves, factor_text, group_rows,  # noqa: E402,F401
                                 in_study, published_value, run_metric, seed_groups, varying)
from fmnist_core.config import REFERENCE_RESULTS  # noqa: E402
from fmnist_core.evaluate import most_confused_pairs, normalized_confusion  # noqa: E402,F401
from fmnist_core.latent import interpolate  # noqa: E402,F401
from fmnist_core.preprocess import ImageInputError, preprocess, preprocess_bytes  # noqa: E402,F401
from fmnist_core.presets import PRESETS, SCHEME_DESCRIPTIONS, SCHEMES, reference_runs, specs_for  # noqa: E402

# One intra-op thread per app process: a single sketch runs in ~2 ms instead of ~270 ms when the
# cores are busy (a training run, other sessions), and concurrent sessions don't fight over them.
torch.set_num_threads(1)

REFERENCE_PROTOCOL = "reference protocol (five runs)"

__all__ = ["CLASS_NAMES", "REFERENCE_RESULTS", "SCHEME_DESCRIPTIONS", "SCHEMES", "PRESETS", "ImageInputError",
           "SpecError", "most_confused_pairs", "normalized_confusion", "interpolate", "preprocess", "preprocess_bytes",
           "METRIC_KIND", "band", "curves", "factor_text", "group_rows", "in_study", "published_value", "run_metric", "seed_groups", "varying"]


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


def _option_label(s: dict) -> str:
    if "error" in s:
        return f"{s['id']} (damaged)"
    return (f"{s['id']} · {s['kind']} · {s['status']} {s['epochs_done']}/{s['epochs']} ep."
            + ("" if s.get("has_weights", True) else " · history only"))


def _not_an_option(s: dict | None, what: str) -> str:
    """Why a run asked for by a link is not offered on this page."""
    if s is None:
        return "no run in this store"
    return "a run shipped without its weights (history only)" if s.get("has_weights") is False else f"not {what}"


# ---- the run picker ---------------------------------------------------------------------------
# Each page asks for what it shows: `chosen_run()` (one run of any kind), `chosen_autoencoder()`
# or `chosen_classifiers()` (several). The call draws the sidebar picker. The choice lives in
# session state, so it survives page changes, and in the URL (?run=ID, ?runs=ID1,ID2), so a link
# opens the same view. Call one of them once per page run.
def chosen_run() -> str:
    """The run picked in the sidebar (Training): the reference autoencoder by default."""
    return _pick_one(None)


def chosen_autoencoder() -> str:
    """The autoencoder run picked in the sidebar: the reference autoencoder by default."""
    return _pick_one("autoencoder")


def chosen_classifiers() -> dict[str, str]:
    """{label: run id} of the classifier runs picked in the sidebar: the reference four by default."""
    return {label(rid): rid for rid in _pick_many()}


def _no_options(runs: dict[str, dict], kind: str | None) -> str:
    what = f"{kind} runs" if kind else "runs"
    if any(s.get("kind") == kind and s.get("has_weights") is False for s in runs.values()):
        return (f"No {what} with weights in this store: those here ship as their history only. "
                "Train some on the Training page.")
    return f"No {what} in the store yet: train some on the Training page."


def _runs_and_labels(kind: str | None) -> tuple[dict[str, dict], list[str], object]:
    """The store's runs, and the options: every run (kind None: curves), or the runs of `kind` with
    weights (the pages that run a network)."""
    runs = {s["id"]: s for s in summaries()}
    options = [rid for rid, s in runs.items()
               if kind is None or (s.get("kind") == kind and s.get("has_weights", True))]
    return runs, options, lambda rid: _option_label(runs[rid]) if rid in runs else rid


def _pick_one(kind: str | None) -> str:
    runs, options, fmt = _runs_and_labels(kind)
    default = reference_ids()["autoencoder"]
    what = "an autoencoder run" if kind else "a run"
    asked = st.query_params.get("run")
    if asked is not None and asked != st.session_state.get("_url_run"):     # a link, not our own write
        if asked in options:
            st.session_state["_w_run"] = asked
        else:
            st.warning(f"The link asks for run `{asked}`, but it is {_not_an_option(runs.get(asked), what)}. "
                       f"Showing the default run, `{default}`, instead.", icon=":material/link_off:")
            st.session_state["_w_run"] = default
    if not options:
        st.sidebar.caption(_no_options(runs, kind))
        return default
    if st.session_state.get("_w_run") not in options:
        remembered = st.session_state.get("picked_run")
        if remembered in runs:
            st.info(f"`{remembered}`, chosen on another page, is not {what}; showing `{default}`.")
        st.session_state["_w_run"] = remembered if remembered in options else (
            default if default in options else options[0])
    chosen = st.sidebar.selectbox("run", options, format_func=fmt, key="_w_run",
                                  help="The store's runs: id, kind, status, epochs done. The URL keeps the choice.")
    st.sidebar.caption(fmt(chosen))                  # the whole label: the box cuts long ones short
    st.session_state["picked_run"] = st.session_state["_url_run"] = st.query_params["run"] = chosen
    st.query_params.pop("runs", None)
    return chosen


def _pick_many() -> list[str]:
    runs, options, fmt = _runs_and_labels("classifier")
    ref = reference_ids()
    default = [ref[s] for s in SCHEMES if ref[s] in runs] or [ref[s] for s in SCHEMES]  # none: pages say how
    asked = ",".join(st.query_params.get_all("runs"))
    if asked and asked != st.session_state.get("_url_runs"):                 # a link, not our own write
        ids = [r for r in asked.split(",") if r]
        good, bad = [r for r in ids if r in options], [r for r in ids if r not in options]
        if bad:
            reasons = "; ".join(f"`{r}` is {_not_an_option(runs.get(r), 'a classifier run')}" for r in bad)
            st.warning(f"The link asks for runs this page cannot show: {reasons}. "
                       + ("Showing the others." if good else "Showing the default, the reference classifiers, "
                                                             "instead."), icon=":material/link_off:")
        st.session_state["_w_runs"] = good or default
    if not options:
        st.sidebar.caption(_no_options(runs, "classifier"))
        return default
    if "_w_runs" not in st.session_state:
        st.session_state["_w_runs"] = st.session_state.get("picked_runs", default)
    st.session_state["_w_runs"] = [r for r in st.session_state["_w_runs"] if r in options]
    chosen = st.sidebar.multiselect("classifier runs", options, format_func=fmt, key="_w_runs",
                                    help="Shown side by side; the reference four by default. The URL keeps the choice.")
    st.session_state["picked_runs"] = chosen
    st.session_state["_url_runs"] = st.query_params["runs"] = ",".join(chosen)
    st.query_params.pop("run", None)
    return chosen


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


# ---- runs ------------------------------------------------------------------------------------
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


# ---- training runs ---------------------------------------------------------------------------
def training_runs() -> list[dict]:
    """The progress (pid, run, epoch, batch, batches, epochs, started) of every run training now,
    those in their first epoch (no manifest yet) included."""
    s = store()
    return [{"run": rid, **(s.progress(rid) or {})} for rid in s.training_now()]


def preset_fields(name: str) -> dict:
    """The form's fields with the preset's values (the reference protocol: the reference autoencoder's)."""
    spec = PRESETS["reference-autoencoder" if name == REFERENCE_PROTOCOL else name].spec
    return {"epochs": spec.epochs, "subset": spec.subset, "seed": spec.seed, "batch_size": spec.batch_size,
            "optimizer.name": spec.optimizer.name, "optimizer.lr": spec.optimizer.lr,
            "encoder.dropout": spec.encoder.dropout, "encoder.bottleneck": spec.encoder.bottleneck}


def plan(name: str, fields: dict) -> tuple[dict, list[str]]:
    """(overrides that differ from the preset, the run ids training them makes); SpecError if invalid."""
    base = preset_fields(name)
    overrides = {k: v for k, v in fields.items() if v != base[k]}
    if name == REFERENCE_PROTOCOL:
        from fmnist_core.presets import reference_specs
        specs = list(reference_specs(overrides).values())
    else:
        specs = specs_for(name, overrides)
    return overrides, [s.run_id for s in specs]


def start_training(name: str, overrides: dict, device: str) -> str:
    """Start `python -m fmnist_core train` as a background process that outlives the page.

    Each run's own lock decides: if another process trains one of them, this one exits at once
    (code 3) and the page keeps showing the run already in progress.
    """
    try:
        root = store().write_root
    except CheckpointError as e:
        return f"Cannot train: {e}"
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--device", device, "--checkpoints", str(root), "--quiet"]
    if name != REFERENCE_PROTOCOL:
        cmd += ["--preset", name]
    for k, v in overrides.items():
        cmd += ["--set", f"{k}={'none' if v is None else v}"]     # parsed as TOML; a bare word stays a string
    rc, last_line = _launch(cmd, root / "train.log", started=lambda proc: False, wait_s=1.0)
    if rc == 3:
        return "One of these runs is already training; its progress is shown below."
    if rc not in (None, 0):
        return f"Training did not start: {last_line}"
    return "Training started."


def _launch(cmd: list[str], log_path: Path, started, wait_s: float) -> tuple[int | None, str]:
    """Start `cmd` in a session of its own (it outlives the page and its stop signal reaches its
    children), its output appended to `log_path`; wait up to `wait_s` seconds until `started(proc)`
    or it exits. Returns (exit code, None while it runs; the log's last line)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None and not started(proc):
        time.sleep(0.2)
    rc = proc.poll()
    last = log_path.read_text(errors="replace").strip().splitlines()[-1:] if rc not in (None, 0) else []
    return rc, (last or ["?"])[0]


def stop_training(pid: int) -> str:
    try:
        os.kill(int(pid), signal.SIGTERM)   # the run saves nothing half-done: finished epochs stay
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


def recipe_result() -> dict:
    """The better recipe (preset recipe-scratch) over seeds 0-2 in the store: mean, std, seeds, run ids."""
    from fmnist_core.study import over_seeds
    return over_seeds(store(), PRESETS["recipe-scratch"].spec)


def table_one_over_seeds() -> dict[str, dict]:
    """{scheme: {"mean", "std" (None under 2 seeds), "seeds"}}: the 2026 Table I's last-epoch test
    accuracy over the seeds of the study r2026-table1 in the store (test MSE for the autoencoder)."""
    out = {}
    for row in study_table("r2026-table1"):
        key = "final_test_acc" if row["label"] != "autoencoder" else "test_mse"
        out[row["label"]] = {"mean": row["ours"].get(key), "std": row["std"].get(key), "seeds": row["seeds"]}
    return out


# ---- comparing runs and running studies ------------------------------------------------------
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
def _study_table(name: str, with_predictions: bool, fingerprint: tuple) -> list[dict]:
    from fmnist_core.study import table
    images, labels = test_arrays() if with_predictions else (None, None)
    return table(study_named(name), store(), images, labels)


def study_table(name: str) -> list[dict]:
    """study.table of the study `name` on the store (full size), cached until a run changes. The shirt
    counts of a study that reports them need the data set; without it those cells stay empty."""
    from fmnist_core.study import PREDICTION_METRICS
    study = study_named(name)
    needs = any(m in PREDICTION_METRICS for m in study.metrics)
    return _study_table(name, needs and test_set() is not None, store_fingerprint())


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


def running_study(name: str) -> dict | None:
    from fmnist_core.study import running_study as _running
    try:
        return _running(store(), name)
    except CheckpointError:
        return None


def study_progress(name: str, epochs: int | None, subset: int | None) -> list[dict]:
    """Per run of the study at this size: label, seed, run id, status, epoch, epochs, metric, value."""
    from fmnist_core.study import trial_status
    study = study_named(name)
    return trial_status(study, store(), epochs, subset)


def study_sizes(name: str) -> list[tuple]:
    from fmnist_core.study import study_sizes as _sizes
    return _sizes(store(), name)


def start_study(name: str, epochs: int | None, subset: int | None) -> str:
    """Start `python -m fmnist_core study run NAME` as a background process that outlives the page.

    The study's own lock decides: while another process runs it on this store, this one exits at
    once (code 3) and the page shows the one in progress.
    """
    if running_study(name):
        return "This study is already running; its progress is shown below."
    try:
        root = store().write_root
    except CheckpointError as e:
        return f"Cannot run the study: {e}"
    cmd = [sys.executable, "-m", "fmnist_core", "study", "run", name, "--checkpoints", str(root), "--json"]
    cmd += ["--epochs", str(epochs)] * (epochs is not None) + ["--subset", str(subset)] * (subset is not None)
    rc, last_line = _launch(cmd, root / ".studies" / f"{name}.log", wait_s=10.0,   # until it holds the lock
                            started=lambda proc: (running_study(name) or {}).get("pid") == proc.pid)
    if rc == 3:
        return "This study is already running; its progress is shown below."
    if rc not in (None, 0):
        return f"The study did not start: {last_line}"
    return "Study started."


def stop_study(name: str) -> str:
    """Stop the process running the study, its Ray instance and trials with it; finished runs stay."""
    state = running_study(name)
    if not state or not state.get("pgid"):
        return "The study is not running."
    pid, pgid = int(state.get("pid") or 0), int(state["pgid"])
    try:
        if pid == pgid:                 # started here (a session of its own): its Ray processes go too
            os.killpg(pgid, signal.SIGTERM)
        else:                           # started in someone's shell: only the driver
            os.kill(pid, signal.SIGTERM)
    except OSError as e:
        return f"Could not stop process {pid}: {e.strerror}"
    return "Stopping: finished trials stay; partial ones resume from their last epoch when it runs again."
