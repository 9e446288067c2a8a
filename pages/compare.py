"""Compare: every run in one table, their curves overlaid, factors against results with linked brushes,
and the reference studies started, watched and stopped from here."""
import hashlib

import pandas as pd
import streamlit as st

from fmnist_app import cache, compare_views, jobs, lib
from fmnist_app.compare_views import METRIC_TITLE

ALL_RUNS = "all runs"
STATUSES = ["complete", "partial", "training"]


# ---- the runs table ----------------------------------------------------------------------------
def filters_ui(studies: list) -> tuple[str, list[str], list[str], bool]:
    names = [ALL_RUNS, *[s.name for s in studies]]
    titles = {s.name: f"{s.name}: {s.title}" for s in studies}
    asked = st.query_params.get("study")
    if asked in names and "cmp_study" not in st.session_state:
        st.session_state["cmp_study"] = asked
    c1, c2, c3, c4 = st.columns([3, 2, 2, 1.6])
    study = c1.selectbox("study", names, format_func=lambda n: titles.get(n, n), key="cmp_study")
    kinds = c2.multiselect("kind", ["classifier", "autoencoder"], default=["classifier", "autoencoder"])
    statuses = c3.multiselect("status", STATUSES, default=STATUSES)
    grouped = c4.toggle("seeds as mean ± std", value=False,
                        help="Runs that differ only by their seed become one row and one curve with a min–max band.")
    if study == ALL_RUNS:
        st.query_params.pop("study", None)
    else:
        st.query_params["study"] = study
    return study, kinds, statuses, grouped


def table_frame(rows: list[dict], factors: list[str], grouped: bool) -> pd.DataFrame:
    """The table as shown: factor columns, then results; one row per run or per seed group."""
    cols = {"id": "run", "trial": "trial", "kind": "kind", "status": "status",
            **{f: f for f in factors if not (grouped and f == "seed")},
            "metric": "metric", "final": "final", "best": "best", "best_epoch": "best epoch", "gap": "gap",
            "progress": "epochs done", "wall_time_s": "wall s", "published": "published"}
    if grouped:
        rows = lib.group_rows(rows, lib.seed_groups(rows),
                          ("final", "best", "gap", "wall_time_s"))
        cols = {**cols, "seeds": "seeds", "best_std": "best ± std"}
    df = pd.DataFrame([{**r, **{f: lib.factor_text(f, r["spec_flat"].get(f)) for f in factors}} for r in rows])
    df["progress"] = df["epochs_done"].astype(str) + "/" + df["epochs"].astype(str)
    for f in factors:          # mixed values (None and numbers, lists) shown as text
        if f in df and df[f].map(type).nunique() > 1:
            df[f] = df[f].map(lambda v: "none" if v is None else str(v))
    df["open"] = "training?run=" + df["id"]
    out = df[[c for c in cols if c in df] + ["open"]].rename(columns=cols)
    out.attrs["runs"] = [r.get("runs", [r["id"]]) for r in rows]
    return out


def runs_table_ui(df: pd.DataFrame, key: str) -> list[str]:
    """Draw the table; return the run ids of the selected rows (all member runs of a seed group)."""
    event = st.dataframe(
        df, hide_index=True, on_select="rerun", selection_mode="multi-row", key=key,
        column_config={
            "open": st.column_config.LinkColumn("open", display_text="Training ↗",
                                                help="Opens the run on the Training page"),
            "final": st.column_config.NumberColumn(format="%.4f"), "best": st.column_config.NumberColumn(format="%.4f"),
            "gap": st.column_config.NumberColumn(format="%.4f", help="train − validation accuracy, or validation − "
                                                                    "train MSE, at the last epoch"),
            "published": st.column_config.NumberColumn(format="%.4f", help="the study's published figure"),
            "best ± std": st.column_config.NumberColumn(format="± %.4f"),
            "wall s": st.column_config.NumberColumn(format="%.0f")})
    picked = event.selection.rows if event is not None else []
    return [rid for i in picked for rid in df.attrs["runs"][i]]


def study_table_ui(name: str) -> None:
    """The study's own table: per trial, ours (mean ± std over complete seeds) beside the published
    figure, and the gain over the trial it changes, each with whether it exceeds the noise."""
    rows, notes = cache.study_table(name, size=None)       # a quick study's runs where only they exist
    metrics = list(dict.fromkeys([*cache.study_named(name).metrics,
                                  *(m for r in rows for m in ("test_accuracy", "test_mse") if m in r["ours"])]))
    with st.expander("The study's table: ours beside the published figures", expanded=False):
        first = next((m for m in ("final_test_acc", "test_accuracy", "test_mse") if m in metrics), metrics[0])
        metric = st.selectbox("metric", metrics, index=metrics.index(first), key=f"cmp_study_metric_{name}")
        for note in notes:                                   # which size, and the other sizes with runs
            st.caption(note)
        mark = {True: "yes", False: "no"}
        frame = pd.DataFrame([{
            "trial": r["label"], "seeds": r["seeds"], "ours": r["ours"].get(metric), "± std": r["std"].get(metric),
            "published": r["published"].get(metric), "difference": r["difference"].get(metric),
            "p": r["difference_p"].get(metric), "beyond the noise": mark.get(r["beyond_noise"].get(metric)),
            "against": r["against"], "gain": r["gain"].get(metric), "gain p": r["gain_p"].get(metric),
            "gain beyond the noise": mark.get(r["gain_beyond_noise"].get(metric)),
            "runs": r["runs"]} for r in rows])
        frame = frame.dropna(axis="columns", how="all")
        number = st.column_config.NumberColumn(format="%.4f")
        p_value = st.column_config.NumberColumn(format="%.3f")
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={**{c: number for c in ("ours", "± std", "published", "difference", "gain")},
                                    **{c: p_value for c in ("p", "gain p")}})
        st.caption("Means over the complete seeds of each trial (a trial still training adds nothing until it "
                   "finishes). Beyond the noise means p < 0.05: for a difference from the published single run, "
                   "a t-test that takes it as one more run (error std·√(1 + 1/seeds), seeds − 1 degrees of "
                   "freedom); for a gain over the trial it changes, Welch's t-test on both trials' seeds. With 3 "
                   "seeds the bar is about 5 standard deviations. `python -m fmnist_core study table " + name
                   + " --markdown` prints every metric.")
        chart = compare_views.gains_chart(rows, metric)
        if chart is not None:
            st.altair_chart(chart, width="stretch")


def links_ui(selected: list[str], kinds: dict[str, str]) -> None:
    """One click to open the selected runs on the other pages, through the run picker's URL parameter."""
    if not selected:
        st.caption("Select rows (the boxes on the left) to draw only their curves and to open them on other pages.")
        return
    first = selected[0]
    cols = st.columns(5)
    cols[0].page_link("pages/training.py", label=f"Training: {first}", icon=":material/monitoring:",
                      query_params={"run": first})
    if kinds.get(first) == "autoencoder":
        cols[1].page_link("pages/reconstructions.py", label="Reconstructions", icon=":material/compare:",
                          query_params={"run": first})
        cols[2].page_link("pages/latent_space.py", label="Latent space", icon=":material/scatter_plot:",
                          query_params={"run": first})
    classifiers = [r for r in selected if kinds.get(r) == "classifier"]
    if classifiers:
        cols[3].page_link("pages/confusion.py", label=f"Confusion ({len(classifiers)} runs)",
                          icon=":material/grid_on:", query_params={"runs": ",".join(classifiers)})


# ---- curves and linked views (the charts: fmnist_app/compare_views.py) ---------------------------
def views_ui(rows: list[dict], selected: list[str], grouped: bool) -> None:
    kinds = {r["kind"] for r in rows}
    options = [m for m, (kind, _) in lib.METRIC_KIND.items() if kind in kinds]
    c1, c2 = st.columns([1, 2])
    metric = c1.radio("metric", options, horizontal=True, format_func=METRIC_TITLE.get, key="cmp_metric")
    kind = lib.METRIC_KIND[metric][0]
    factors = lib.varying([r for r in rows if r["kind"] == kind])
    colour_by = c2.selectbox("colour by", ["run", *factors], key="cmp_colour")
    views = cache.linked_views(tuple(r["id"] for r in rows), tuple(selected), metric, colour_by, grouped)
    if views is None:
        st.info(f"No {kind} run has a finished epoch yet.")
        return
    spec, runs, columns, drawn = views
    st.caption(f"{drawn} of {len(runs)} {kind} runs drawn"
               + (" (the rows selected in the table)" if selected else "") + ", none left out. "
               + ("Drag across a factor's chart to brush a range (click a category; shift-click for more): "
                  "the other views and the curves keep only the runs inside every brush. Hollow circles: "
                  "the study's published figure." if columns else ""))
    names = [f"brush_{c}" for c, _ in columns.values()]
    # A new element for other runs: Streamlit would otherwise keep the old data in the drawn view.
    drawn_key = hashlib.sha1(",".join(selected).encode()).hexdigest()[:8]
    event = st.vega_lite_chart(spec, on_select="rerun" if names else "ignore", selection_mode=names or None,
                               key=f"cmp_views_{metric}_{colour_by}_{grouped}_{drawn_key}")
    selection = (event or {}).get("selection", {}) if names and isinstance(event, dict) else {}
    if any(selection.get(n) for n in names):
        inside = compare_views.brushed_ids(runs, columns, selection)
        st.markdown(f"**Brushed: {len(inside)} of {len(runs)} runs** — " + ", ".join(f"`{r}`" for r in inside[:12])
                    + (" …" if len(inside) > 12 else ""))


# ---- studies -----------------------------------------------------------------------------------
def study_size_ui(name: str, running: dict | None) -> tuple[int | None, int | None]:
    if running:
        return running.get("epochs"), running.get("subset")
    sizes = jobs.study_sizes(name)
    fmt = {(None, None): "full size"}
    return st.selectbox("size shown", sizes, format_func=lambda s: fmt.get(tuple(s)) or
                        f"quick: {s[0] or 'all'} epochs on {s[1] or 'all'} images", key=f"size_{name}")


def study_ui(studies: list) -> None:
    st.header("Studies")
    if not studies:
        st.info("No study files in `studies/`.")
        return
    titles = {s.name: f"{s.name}: {s.title}" for s in studies}
    chosen = st.session_state.get("cmp_study")
    name = st.selectbox("study to run or watch" if jobs.allowed() else "study to watch", list(titles),
                        format_func=titles.get, key="run_study",
                        index=list(titles).index(chosen) if chosen in titles else 0)
    running = jobs.running_study(name)

    @st.fragment(run_every=3.0 if running else None)
    def progress():
        state = jobs.running_study(name)
        epochs, subset = study_size_ui(name, state)
        trials = pd.DataFrame(jobs.study_progress(name, epochs, subset))
        done = (trials["status"] == "complete").sum()
        if state:
            st.info(f"Running since {pd.Timestamp(state.get('started', 0), unit='s'):%H:%M} UTC "
                    f"(process {state.get('pid')}): {done} of {len(trials)} runs complete. "
                    "Everyone who opens this page sees it; starting it again joins nothing and starts nothing.")
            if jobs.allowed() and st.button("Stop the study", key="stop_study", help="Its finished runs stay"):
                st.toast(jobs.stop_study(name))
        else:
            st.caption(f"{done} of {len(trials)} runs of this size complete in the store.")
        trials["progress"] = trials["epoch"] / trials["epochs"]
        st.dataframe(trials[["label", "seed", "status", "progress", "epoch", "epochs", "metric", "value", "run_id"]],
                     hide_index=True, key=f"trials_{name}", column_config={
                         "progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
                         "value": st.column_config.NumberColumn("last val.", format="%.4f")})
        if running and not state:
            st.rerun(scope="app")                   # it ended: redraw the start form and the table
    progress()
    if running or not jobs.allowed():       # public mode: no start form (the router's line says how)
        return
    with st.form(f"start_{name}"):
        st.markdown("Runs every trial not yet complete in the store on a local Ray instance, in the background "
                    "(it goes on when this page closes). A quick size makes other runs than the full study's.")
        c1, c2, c3 = st.columns(3)
        quick = c1.toggle("quick size", value=True)
        epochs = c2.number_input("epochs", 1, 500, 2)
        subset = c3.number_input("training images", 100, 50_000, 2000, step=500)
        if st.form_submit_button("Start the study", type="primary"):
            st.session_state["study_message"] = jobs.start_study(name, *((epochs, subset) if quick else (None, None)))
            st.rerun()
    if "study_message" in st.session_state:
        st.info(st.session_state.pop("study_message"))


def compare() -> None:
    st.title("Compare runs")
    studies = cache.studies()
    rows, _ = cache.compare_rows()
    if not rows:
        cache.missing_models_message("the store has no runs to compare yet.")
        study_ui(studies)
        return
    damaged = [r for r in rows if r["status"] == "damaged"]
    if damaged:
        st.warning(f"{len(damaged)} run(s) could not be read and are not compared: "
                   + "; ".join(f"{r['id']}: {r['error']}" for r in damaged))
    study, kinds, statuses, grouped = filters_ui(studies)
    shown = [r for r in (rows if study == ALL_RUNS else lib.in_study(rows, study))
             if r["kind"] in kinds and r["status"] in statuses]
    if not shown:
        st.info("No run matches these filters." + (" Start the study below." if study != ALL_RUNS else ""))
        study_ui(studies)
        return
    factors = lib.varying(shown)
    df = table_frame(shown, factors, grouped)
    st.caption(f"{len(df)} {'seed groups' if grouped else 'runs'}. Columns: the spec fields that vary among them, "
               "then the validation metric (accuracy for classifiers, MSE for autoencoders): final, best and its "
               "epoch. Click a header to sort; the toolbar above the table downloads it as CSV.")
    selected = runs_table_ui(df, key=f"runs_table_{grouped}")
    st.download_button("Download CSV", df.drop(columns=["open"]).to_csv(index=False).encode(),
                       file_name=f"runs-{study.replace(' ', '-')}.csv", mime="text/csv")
    links_ui(selected, {r["id"]: r["kind"] for r in shown})
    if study != ALL_RUNS:
        study_table_ui(study)
    st.header("Curves and factors")
    views_ui(shown, selected, grouped)
    study_ui(studies)


compare()
