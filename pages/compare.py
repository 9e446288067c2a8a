"""Compare: every run in one table, their curves overlaid, factors against results with linked brushes,
and the reference studies started, watched and stopped from here."""
import functools
import hashlib
import math
import operator

import altair as alt
import pandas as pd
import streamlit as st

from fmnist_app import cache, jobs, lib

ALL_RUNS = "all runs"
STATUSES = ["complete", "partial", "training"]
METRIC_TITLE = {"accuracy": "accuracy", "loss": "cross-entropy", "mse": "MSE"}


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
    rows = cache.study_table(name)
    metrics = list(dict.fromkeys([*cache.study_named(name).metrics,
                                  *(m for r in rows for m in ("test_accuracy", "test_mse") if m in r["ours"])]))
    with st.expander("The study's table: ours beside the published figures", expanded=False):
        first = next((m for m in ("final_test_acc", "test_accuracy", "test_mse") if m in metrics), metrics[0])
        metric = st.selectbox("metric", metrics, index=metrics.index(first), key=f"cmp_study_metric_{name}")
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
        chart = gains_chart(rows, metric)
        if chart is not None:
            st.altair_chart(chart, width="stretch")


GAIN_NOISE = {True: "beyond the noise (p < 0.05)", False: "within the noise", None: "one seed: noise not measured"}


def gains_chart(rows: list[dict], metric: str) -> alt.Chart | None:
    """What each change buys: per trial with a gain in `metric`, a point at the gain and a bar of its
    95% interval (Welch's t); None when no trial is measured against another."""
    data = [{"trial": r["label"], "against": r["against"], "gain": g, "noise": r["gain_noise"].get(metric),
             "p": r["gain_p"].get(metric),
             "seeds": r["seeds"], "verdict": GAIN_NOISE[r["gain_beyond_noise"].get(metric)]}
            for r in rows if (g := r["gain"].get(metric)) is not None]
    if not data:
        return None
    df = pd.DataFrame(data)
    df["low"], df["high"] = df["gain"] - df["noise"], df["gain"] + df["noise"]
    y = alt.Y("trial:N", sort=list(df["trial"]), title=None, axis=alt.Axis(labelLimit=320))
    colour = alt.Color("verdict:N", scale=alt.Scale(domain=list(GAIN_NOISE.values()),
                                                     range=["#d62728", "#7f7f7f", "#bcbd22"]), title=None,
                       legend=alt.Legend(orient="bottom", labelLimit=320))
    tooltip = ["trial", "against", alt.Tooltip("gain:Q", format="+.4f"), alt.Tooltip("noise:Q", format=".4f",
               title="95% half-width"), alt.Tooltip("p:Q", format=".3f"), "seeds", "verdict"]
    bars = alt.Chart(df).mark_rule(strokeWidth=2).encode(x="low:Q", x2="high:Q", y=y, color=colour)
    points = alt.Chart(df).mark_point(filled=True, size=70).encode(
        x=alt.X("gain:Q", title=f"gain in {metric} over the trial it changes"), y=y, color=colour, tooltip=tooltip)
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4], color="black").encode(x="x:Q")
    return (zero + bars + points).properties(
        title=f"What each change buys in {metric}, with its 95% interval",
        height=alt.Step(22))


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


# ---- curves and linked views -----------------------------------------------------------------------
def factor_columns(runs: pd.DataFrame, factors: list[str]) -> dict[str, tuple[str, str]]:
    """factor -> (data column, Vega type). Dotted names are nested fields to Vega, so columns are f0, f1…"""
    out = {}
    for i, f in enumerate(factors):
        values = runs[f"f{i}"]
        # A factor unset on some runs (None, NaN once in a frame) is a category among the numbers.
        numeric = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v).all()
        out[f] = (f"f{i}", "quantitative" if numeric and values.nunique() > 2 else "nominal")
        if out[f][1] == "nominal":
            runs[f"f{i}"] = values.map(lambda v: "none" if v is None or v != v else str(v))
    return out


def brushes(columns: dict[str, tuple[str, str]]) -> dict[str, alt.Parameter]:
    """One selection per factor view: an x-interval brush for numbers, a click (shift for more) otherwise."""
    out = {}
    for f, (col, typ) in columns.items():
        out[f] = (alt.selection_interval(name=f"brush_{col}", encodings=["x"]) if typ == "quantitative" else
                  alt.selection_point(name=f"brush_{col}", fields=[col]))
    return out


def colour(colour_by: str, columns: dict[str, tuple[str, str]], legend: bool) -> alt.Color:
    """The colour of every view: per run (a legend only for a dozen runs or fewer; tooltips name them
    all), or per value of a factor."""
    if colour_by == "run":
        return alt.Color("id:N", title="run", legend=alt.Legend(orient="bottom", columns=3, labelLimit=320)
                         if legend else None)
    col, typ = columns[colour_by]
    return alt.Color(f"{col}:{typ[0].upper()}", title=colour_by, legend=alt.Legend(orient="right") if legend else None,
                     scale=alt.Scale(scheme="viridis") if typ == "quantitative" else alt.Undefined)


def packed_curves(curve_df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per run (or seed group) and split, each of `columns` as its per-epoch values joined by
    commas (Vega-Lite's flatten needs lists, and a list column reaches the browser as an Arrow vector):
    the lookup and the brush predicate then run once per curve, not once per point (the app's Vega
    interprets every expression per datum)."""
    keys = [c for c in ("id", "split", "group") if c in curve_df]
    curve_df = curve_df.sort_values([*keys, "epoch"])
    return curve_df.groupby(keys, sort=False)[columns].agg(
        lambda v: ",".join(f"{x:.6g}" for x in v)).reset_index()


def unpacked(chart: alt.Chart, columns: list[str]) -> alt.Chart:
    """The per-point rows of packed_curves' rows, numbers again."""
    for c in columns:
        chart = chart.transform_calculate(**{f"_{c}": f"split(datum.{c}, ',')"})
    chart = chart.transform_flatten([f"_{c}" for c in columns])
    return chart.transform_calculate(**{c: f"toNumber(datum._{c})" for c in columns})


def curves_chart(curve_df: pd.DataFrame, runs: pd.DataFrame, metric: str, colour_enc, predicate,
                 lookup_cols: list[str], banded: bool) -> alt.Chart:
    title = f"{METRIC_TITLE[metric]}: train solid, validation dashed; ◆ best validation epoch"
    dash = alt.StrokeDash("split:N", sort=["train", "validation"], legend=alt.Legend(orient="bottom"),
                          scale=alt.Scale(domain=["train", "validation"], range=[[1, 0], [6, 3]]))
    values = ["epoch", "mean", "lo", "hi", "n"] if banded else ["epoch", "value"]
    base = alt.Chart(packed_curves(curve_df, values)).transform_lookup(
        lookup="id", from_=alt.LookupData(runs, "id", lookup_cols)).transform_filter(predicate)
    x = alt.X("epoch:Q", title="epoch")
    if banded:
        line = unpacked(base, values).mark_line().encode(
            x=x, y=alt.Y("mean:Q", title=METRIC_TITLE[metric], scale=alt.Scale(zero=False)),
            color=colour_enc, strokeDash=dash, detail="id:N",
            tooltip=["group:N", "split:N", "epoch:Q", "mean:Q", "lo:Q", "hi:Q", "n:Q"])   # packed at 6 digits
        area = unpacked(base.transform_filter("datum.split == 'validation'"), values).mark_area(
            opacity=0.18).encode(x=x, y="lo:Q", y2="hi:Q", color=colour_enc, detail="id:N")
        layers = [area, line]
    else:
        layers = [unpacked(base, values).mark_line(strokeWidth=1.4).encode(
            x=x, y=alt.Y("value:Q", title=METRIC_TITLE[metric], scale=alt.Scale(zero=False)), color=colour_enc,
            strokeDash=dash, detail="id:N",
            tooltip=["id:N", "split:N", "epoch:Q", "value:Q"])]    # no per-point format call: packed at 6 digits
    best = alt.Chart(runs[runs["shown"]]).transform_filter(predicate).mark_point(
        shape="diamond", filled=True, size=70).encode(
        x="best_epoch:Q", y="best:Q", color=colour_enc,
        tooltip=["id:N", alt.Tooltip("best:Q", format=".4f", title="best validation"), "best_epoch:Q"])
    return alt.layer(*layers, best).properties(title=title, height=300, width=760)


def factor_chart(runs: pd.DataFrame, factor: str, col: str, typ: str, metric: str, brush, predicate,
                 colour_enc) -> alt.Chart:
    log = factor.endswith("lr") and typ == "quantitative" and (runs[col] > 0).all()
    x = alt.X(f"{col}:{typ[0].upper()}", title=factor,
              scale=alt.Scale(type="log") if log else (alt.Scale(zero=False) if typ == "quantitative" else alt.Undefined),
              axis=alt.Axis(labelAngle=-30, labelAlign="right", labelLimit=120) if typ == "nominal" else alt.Undefined)
    y = alt.Y("best:Q", title=f"best val. {METRIC_TITLE[metric]}", scale=alt.Scale(zero=False))
    ours = alt.Chart(runs).mark_circle(size=55, opacity=0.85).encode(
        x=x, y=y, color=alt.condition(predicate, colour_enc, alt.value("#d0d0d0")),
        tooltip=["id:N", alt.Tooltip(f"{col}:{typ[0].upper()}", title=factor), alt.Tooltip("best:Q", format=".4f")],
    ).add_params(brush)
    published = alt.Chart(runs).transform_filter("isValid(datum.published)").mark_point(
        filled=False, size=120, color="black", strokeWidth=1.2).encode(
        x=x, y="published:Q", tooltip=["id:N", "published_name:N", alt.Tooltip("published:Q", format=".4f")])
    return alt.layer(ours, published).properties(width=220, height=170)


def parallel_chart(runs: pd.DataFrame, columns: dict[str, tuple[str, str]], metric: str, predicate,
                   lookup_cols: list[str]) -> alt.Chart:
    """Parallel coordinates: each factor and the metric scaled to [0, 1] (lr on a log scale)."""
    axes, long, labels = [*columns, f"best val. {METRIC_TITLE[metric]}"], [], []
    for axis in axes:
        col, typ = columns.get(axis, ("best", "quantitative"))
        values = runs[col]
        if typ == "quantitative":
            v = values.astype(float)
            if axis.endswith("lr") and (v > 0).all():
                v = v.map(math.log10)
            lo, hi = v.min(), v.max()
            norm = (v - lo) / (hi - lo) if hi > lo else v * 0 + 0.5
            ends = [(0.0, values[v.idxmin()]), (1.0, values[v.idxmax()])]
        else:
            cats = sorted(values.unique(), key=str)
            norm = values.map({c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)})
            ends = [(i / (len(cats) - 1) if len(cats) > 1 else 0.5, c) for i, c in enumerate(cats)]
        long += [{"id": rid, "axis": axis, "norm": n} for rid, n in zip(runs["id"], norm)]
        labels += [{"axis": axis, "norm": n, "text": f"{t:.4g}" if isinstance(t, float) else str(t)} for n, t in ends]
    lines = alt.Chart(pd.DataFrame(long)).transform_lookup(
        lookup="id", from_=alt.LookupData(runs, "id", lookup_cols)).mark_line(strokeWidth=1.3).encode(
        x=alt.X("axis:N", sort=axes, title=None,       # every axis named, however many (no overlap culling)
                axis=alt.Axis(labelAngle=-35, labelAlign="left", labelLimit=150, labelOverlap=False, orient="top")),
        y=alt.Y("norm:Q", axis=None), detail="id:N",
        color=alt.condition(predicate, alt.Color("best:Q", scale=alt.Scale(scheme="viridis"),
                                                 title=f"best val. {METRIC_TITLE[metric]}"), alt.value("#e0e0e0")),
        opacity=alt.condition(predicate, alt.value(0.9), alt.value(0.3)), tooltip=["id:N"])
    text = alt.Chart(pd.DataFrame(labels)).mark_text(align="left", dx=4, fontSize=10, color="#444").encode(
        x=alt.X("axis:N", sort=axes), y="norm:Q", text="text:N")
    return alt.layer(lines, text).properties(width=760, height=220, title="parallel coordinates")


def brushed_ids(runs: pd.DataFrame, columns: dict[str, tuple[str, str]], selection: dict) -> list[str]:
    """The runs inside every brush of the chart's returned selection (all of them where none is set)."""
    keep = pd.Series(True, index=runs.index)
    for f, (col, typ) in columns.items():
        state = selection.get(f"brush_{col}")
        if not state:
            continue
        if typ == "quantitative" and isinstance(state, dict) and col in state:
            lo, hi = sorted(state[col])[:2]
            keep &= runs[col].astype(float).between(lo, hi)
        elif isinstance(state, list):
            keep &= runs[col].isin([s.get(col) for s in state if isinstance(s, dict)])
    return list(runs.loc[keep, "id"])


def views_ui(rows: list[dict], selected: list[str], grouped: bool) -> None:
    kinds = {r["kind"] for r in rows}
    options = [m for m, (kind, _) in lib.METRIC_KIND.items() if kind in kinds]
    c1, c2 = st.columns([1, 2])
    metric = c1.radio("metric", options, horizontal=True, format_func=METRIC_TITLE.get, key="cmp_metric")
    kind = lib.METRIC_KIND[metric][0]
    factors = lib.varying([r for r in rows if r["kind"] == kind])
    colour_by = c2.selectbox("colour by", ["run", *factors], key="cmp_colour")
    views = linked_views(cache.store_fingerprint(), tuple(r["id"] for r in rows), tuple(selected), metric,
                         colour_by, grouped)
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
        inside = brushed_ids(runs, columns, selection)
        st.markdown(f"**Brushed: {len(inside)} of {len(runs)} runs** — " + ", ".join(f"`{r}`" for r in inside[:12])
                    + (" …" if len(inside) > 12 else ""))


@st.cache_data(show_spinner="Drawing…", max_entries=32)
def linked_views(fingerprint: tuple, ids: tuple, selected: tuple, metric: str, colour_by: str, grouped: bool):
    """(Vega-Lite spec, per-run frame, factor columns, runs drawn) of the curves and factor views, or None.

    Cached per store state and choices: building an Altair chart this size takes about a second.
    """
    kind = lib.METRIC_KIND[metric][0]
    wanted = set(ids)
    rows = [r for r in cache.compare_rows()[0] if r["id"] in wanted and r["kind"] == kind]
    factors = lib.varying(rows)
    manifests = cache.run_manifests([r["id"] for r in rows])
    runs = []
    for r in rows:
        summary = lib.run_metric(manifests[r["id"]], metric) if r["id"] in manifests else None
        if summary is None:
            continue
        pub = lib.published_value(r["published_values"], metric)
        runs.append({"id": r["id"], **summary, "published": pub[1] if pub else None,
                     "published_name": pub[0] if pub else None,
                     **{f"f{i}": lib.factor_text(f, r["spec_flat"].get(f)) for i, f in enumerate(factors)}})
    if not runs:
        return None
    runs = pd.DataFrame(runs)
    columns = factor_columns(runs, factors)
    shown_ids = [r for r in selected if r in set(runs["id"])] or list(runs["id"])
    runs["shown"] = runs["id"].isin(shown_ids)
    curve_rows = lib.curves({rid: manifests[rid] for rid in shown_ids}, metric)
    if grouped:
        groups = lib.seed_groups([r for r in rows if r["id"] in set(shown_ids)])   # drawn as its first run
        curve_df = pd.DataFrame(lib.band(curve_rows, groups)).rename(columns={"group": "id"})
        curve_df["group"] = curve_df["id"].map(lambda g: f"{g} (+{len(groups[g]) - 1} seeds)")
    else:
        curve_df = pd.DataFrame(curve_rows).rename(columns={"run": "id"}).round({"value": 5})
    params = brushes(columns)
    predicate = functools.reduce(operator.and_, params.values()) if params else alt.datum.id != ""
    enc = colour(colour_by, columns, legend=colour_by != "run" or len(shown_ids) <= 12)
    quiet = colour(colour_by, columns, legend=False)      # the factor views repeat no legend
    lookup_cols = [c for c, _ in columns.values()] + ["best"]
    charts = [curves_chart(curve_df, runs, metric, enc, predicate, lookup_cols, grouped)]
    if factors:
        per_factor = [factor_chart(runs, f, col, typ, metric, params[f], predicate, quiet)
                      for f, (col, typ) in columns.items()]
        charts.append(alt.concat(*per_factor, columns=3))
        if len(factors) > 1:
            charts.append(parallel_chart(runs, columns, metric, predicate, lookup_cols))
    # Every run drawn (no 5,000-row cap); Altair's schema validation would double the time.
    with alt.data_transformers.enable("default", max_rows=None):
        spec = alt.vconcat(*charts).resolve_scale(color="shared").to_dict(validate=False)
    return spec, runs, columns, len(shown_ids)


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
