"""The Compare page's charts: each change's gain with its interval, and the linked views (curves,
a chart per varying factor, parallel coordinates) with their brushes. Altair specs only: the page
draws them, `cache.linked_views` keeps them per store state."""
from __future__ import annotations

import functools
import math
import operator

import altair as alt
import pandas as pd

from fmnist_core.compare import METRIC_KIND, band, curves, factor_text, published_value, run_metric, seed_groups, varying

METRIC_TITLE = {"accuracy": "accuracy", "loss": "cross-entropy", "mse": "MSE"}


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


def linked_views(all_rows: list[dict], manifests_of, ids: tuple, selected: tuple, metric: str, colour_by: str,
                 grouped: bool):
    """(Vega-Lite spec, per-run frame, factor columns, runs drawn) of the curves and factor views, or None.

    `all_rows`: compare.runs_table's rows; `manifests_of(ids)`: {id: manifest}. `cache.linked_views`
    keeps the result per store state and choices: building an Altair chart this size takes about a second.
    """
    kind = METRIC_KIND[metric][0]
    wanted = set(ids)
    rows = [r for r in all_rows if r["id"] in wanted and r["kind"] == kind]
    factors = varying(rows)
    manifests = manifests_of([r["id"] for r in rows])
    runs = []
    for r in rows:
        summary = run_metric(manifests[r["id"]], metric) if r["id"] in manifests else None
        if summary is None:
            continue
        pub = published_value(r["published_values"], metric)
        runs.append({"id": r["id"], **summary, "published": pub[1] if pub else None,
                     "published_name": pub[0] if pub else None,
                     **{f"f{i}": factor_text(f, r["spec_flat"].get(f)) for i, f in enumerate(factors)}})
    if not runs:
        return None
    runs = pd.DataFrame(runs)
    columns = factor_columns(runs, factors)
    shown_ids = [r for r in selected if r in set(runs["id"])] or list(runs["id"])
    runs["shown"] = runs["id"].isin(shown_ids)
    curve_rows = curves({rid: manifests[rid] for rid in shown_ids}, metric)
    if grouped:
        groups = seed_groups([r for r in rows if r["id"] in set(shown_ids)])   # drawn as its first run
        curve_df = pd.DataFrame(band(curve_rows, groups)).rename(columns={"group": "id"})
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
