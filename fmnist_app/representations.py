"""The Representations page's side of the library: its run set (sidebar and URL) and its cached calls.

Every result is cached twice: on disk by the library (per weights digest, shipped for the reference
runs) and here per session server (`st.cache_data`/`st.cache_resource`, keyed by the runs' manifests),
so a later visit reads neither disk nor network. Where something cannot be computed the function
shows why and returns None.
"""
from __future__ import annotations

import os

import numpy as np
import streamlit as st

from fmnist_app import cache
from fmnist_core.analysis import represent as R
from fmnist_core.analysis.attributions import METHODS, SANITY_NOTE
from fmnist_core.analysis.features import RepresentationError, layer_names
from fmnist_core.analysis.maps import first_filters, one_input
from fmnist_core.store import CheckpointError

__all__ = ["METHODS", "SANITY_NOTE", "any_runs", "chosen_runs", "pair_grids", "probe_rows", "aligned_maps", "activations",
           "filters", "attribution_maps", "layers_of", "short"]

URL_KEY = "rset"
# A smaller image set for quick checks (tests): the first N test and N training images. Default: all.
LIMIT = int(os.environ.get("FMNIST_REPR_IMAGES", "0")) or None


@st.cache_data(ttl=30, show_spinner=False)
def _reference_names(roots: tuple) -> dict[str, str]:
    return {rid: name for name, rid in cache.reference_ids().items()}


def short(label: str) -> str:
    """A reference run by its scheme, untrained controls marked, anything else by its id."""
    names = _reference_names(tuple(map(str, cache.store().roots)))
    if label.startswith(R.UNTRAINED):
        return "untrained " + names.get(label[len(R.UNTRAINED):], label[len(R.UNTRAINED):])
    return names.get(label, label)


def _default() -> list[str]:
    ref = cache.reference_ids()
    return [ref[k] for k in ("autoencoder", "scratch", "finetune", "frozen_random", "frozen_pretrained")]


def chosen_runs() -> list[str]:
    """The run set picked in the sidebar (any run with weights; the untrained control of each), mirrored
    in the URL as ?rset=ID1,ID2: the reference autoencoder and the four schemes by default."""
    runs = {s["id"]: s for s in cache.summaries() if "error" not in s and s.get("has_weights", True)}
    options = list(runs) + [R.UNTRAINED + rid for rid in runs]
    default = [r for r in _default() if r in runs]
    asked = st.query_params.get(URL_KEY)
    if asked and asked != st.session_state.get("_url_rset"):
        ids = [r for r in asked.split(",") if r]
        bad = [r for r in ids if r not in options]
        if bad:
            st.warning(f"The link asks for runs this store cannot show ({', '.join(f'`{b}`' for b in bad)}: not "
                       "here, or history only). Showing the others.", icon=":material/link_off:")
        st.session_state["_w_rset"] = [r for r in ids if r in options] or default
    if "_w_rset" not in st.session_state:
        st.session_state["_w_rset"] = default
    st.session_state["_w_rset"] = [r for r in st.session_state["_w_rset"] if r in options]
    chosen = st.sidebar.multiselect("runs compared", options, key="_w_rset", format_func=lambda r: (
        f"{short(r)} · {r}" if short(r) != r else r),
        help="Any runs with weights, and `untrained:` controls (the same spec with its initial weights). "
             "The URL keeps the choice.")
    st.session_state["_url_rset"] = st.query_params[URL_KEY] = ",".join(chosen)
    return chosen


def any_runs() -> bool:
    """Whether the store holds any run with weights."""
    return any("error" not in s and s.get("has_weights", True) for s in cache.summaries())


def _keys(run_ids) -> tuple:
    return tuple(cache.run_key(r.removeprefix(R.UNTRAINED)) + ("~u" if r.startswith(R.UNTRAINED) else "")
                 for r in run_ids)


@st.cache_resource(show_spinner="Loading the runs…", max_entries=32)
def _run(key: str, ref: str):
    data = cache.dataset()
    return R.open_run(cache.store(), ref, data)


def _runs(run_ids: list[str]):
    try:
        return [_run(k, r) for k, r in zip(_keys(run_ids), run_ids)]
    except (RepresentationError, CheckpointError) as e:
        st.warning(str(e))
        return None


def layers_of(run_ids: list[str]) -> dict[str, list[str]]:
    runs = _runs(run_ids)
    return {r: layer_names(run.model) for r, run in zip(run_ids, runs)} if runs else {}


@st.cache_data(show_spinner="Computing CKA between the runs (once per pair of weights; shipped for the reference runs)…",
               max_entries=16)
def _pair_grids(keys: tuple, run_ids: tuple) -> dict:
    pairs = R.similarity_set(cache.store(), _runs(list(run_ids)), cache.dataset(), limit=LIMIT)
    return {f"{a}|{b}": v for (a, b), v in pairs.items()}


def pair_grids(run_ids: list[str]) -> dict | None:
    """{"a|b": similarity grid} for every pair (a before b, and each with itself)."""
    if _runs(run_ids) is None or cache.dataset() is None:
        return None
    return _pair_grids(_keys(run_ids), tuple(run_ids))


@st.cache_data(show_spinner="Probing every layer (once per run; shipped for the reference runs)…", max_entries=16)
def _probe_rows(keys: tuple, run_ids: tuple) -> list[dict]:
    store, data = cache.store(), cache.dataset()
    kw = {"n_train": LIMIT, "n_test": LIMIT} if LIMIT else {}
    rows = R.probes(store, None, data, **kw)
    for run in _runs(list(run_ids)):
        rows += R.probes(store, run, data, **kw)
    return rows


def probe_rows(run_ids: list[str]) -> list[dict] | None:
    if _runs(run_ids) is None or cache.dataset() is None:
        return None
    return _probe_rows(_keys(run_ids), tuple(run_ids))


@st.cache_data(show_spinner="Mapping each run's features with UMAP and aligning the maps…", max_entries=16)
def _aligned(keys: tuple, run_ids: tuple, layer: str, n: int) -> dict:
    from fmnist_core.analysis.maps import aligned_maps as fit
    images, _ = R.split_images(cache.dataset(), "test", min(n, LIMIT or n))
    return fit(cache.store(), _runs(list(run_ids)), images, layer)


def aligned_maps(run_ids: list[str], layer: str, n: int) -> dict | None:
    if _runs(run_ids) is None or cache.dataset() is None:
        return None
    try:
        return _aligned(_keys(run_ids), tuple(run_ids), layer, n)
    except RepresentationError as e:
        st.warning(str(e))
        return None


def activations(run_ids: list[str], image: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    runs = _runs(run_ids) or []
    return {r: one_input(run, image) for r, run in zip(run_ids, runs)}


def filters(run_id: str) -> np.ndarray:
    return first_filters(_runs([run_id])[0])


def attribution_maps(run_ids: list[str], image: np.ndarray, methods: tuple[str, ...]) -> dict[str, dict] | None:
    """{run: {"target", "maps"}} for the classifiers among `run_ids`; None (with a note) without captum."""
    from fmnist_core.analysis.attributions import attributions
    out = {}
    for r, run in zip(run_ids, _runs(run_ids) or []):
        if run.model.kind != "classifier":
            continue
        try:
            out[r] = attributions(run.model, image, methods=methods)
        except RepresentationError as e:
            st.info(str(e))
            return None
    return out
