"""The sidebar's run picker.

Each page asks for what it shows: `chosen_run()` (one run of any kind), `chosen_autoencoder()` or
`chosen_classifiers()` (several). The call draws the sidebar picker. The choice lives in session
state, so it survives page changes, and in the URL (?run=ID, ?runs=ID1,ID2), so a link opens the
same view. Call one of them once per page run.
"""
from __future__ import annotations

import streamlit as st

from fmnist_app.cache import label, reference_ids, store, summaries
from fmnist_core import CheckpointError
from fmnist_core.presets import SCHEMES


def chosen_run() -> str:
    """The run picked in the sidebar (Training): the reference autoencoder by default."""
    return _pick_one(None)


def chosen_autoencoder() -> str:
    """The autoencoder run picked in the sidebar: the reference autoencoder by default."""
    return _pick_one("autoencoder")


def chosen_classifiers() -> dict[str, str]:
    """{label: run id} of the classifier runs picked in the sidebar: the reference four by default."""
    return {label(rid): rid for rid in _pick_many()}


def _option_label(s: dict) -> str:
    if "error" in s:
        return f"{s['id']} (damaged)"
    preset = f" · preset {s['preset']}" if s.get("preset") not in (None, s["name"]) else ""   # found by its name
    return (f"{s['id']}{preset} · {s['kind']} · {s['status']} {s['epochs_done']}/{s['epochs']} ep."
            + ("" if s.get("has_weights", True) else " · history only"))


def _not_an_option(s: dict | None, what: str) -> str:
    """Why a run asked for by a link is not offered on this page."""
    if s is None:
        return "no run in this store"
    return "a run shipped without its weights (history only)" if s.get("has_weights") is False else f"not {what}"


def _no_options(runs: dict[str, dict], kind: str | None) -> str:
    what = f"{kind} runs" if kind else "runs"
    if any(s.get("kind") == kind and s.get("has_weights") is False for s in runs.values()):
        return (f"No {what} with weights in this store: those here ship as their history only. "
                "Train some on the Training page.")
    return f"No {what} in the store yet: train some on the Training page."


def _resolved(ref: str, runs: dict) -> str:
    """A link's run: an id, or what the store makes of a preset's name, a prefix or a name (as `--run`)."""
    if ref in runs:
        return ref
    try:
        return store().resolve(ref)
    except CheckpointError:
        return ref


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
        asked = _resolved(asked, runs)
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
        ids = [_resolved(r, runs) for r in asked.split(",") if r]
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
