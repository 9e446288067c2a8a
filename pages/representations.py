"""Representations: what each run's layers learned and how the transfer schemes differ, layer by layer."""
import warnings

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_app import cache, lib
from fmnist_app import representations as rep
from fmnist_app.images import tile

VIEWS = ["Similarity (CKA)", "Probes", "Aligned maps", "One input", "Attributions"]


def cka_heatmap(grid: dict, title: str) -> alt.Chart:
    rows = [{"row": la, "column": lb, "i": i, "j": j, "CKA": v,
             "spread": (grid.get("cka_std") or [[None] * len(grid["layers_b"])] * len(grid["layers_a"]))[i][j]}
            for i, (la, row) in enumerate(zip(grid["layers_a"], grid["cka"]))
            for j, (lb, v) in enumerate(zip(grid["layers_b"], row))]
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(
        x=alt.X("column:N", sort=grid["layers_b"], title=rep.short(grid["b"])),
        y=alt.Y("row:N", sort=grid["layers_a"], title=rep.short(grid["a"])))
    cells = base.mark_rect().encode(
        color=alt.Color("CKA:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")),
        tooltip=[alt.Tooltip("row:N", title=f"layer of {rep.short(grid['a'])}"),
                 alt.Tooltip("column:N", title=f"layer of {rep.short(grid['b'])}"),
                 alt.Tooltip("CKA:Q", format=".3f"), alt.Tooltip("spread:Q", title="bootstrap std", format=".3f")])
    text = base.mark_text(fontSize=10).encode(text=alt.Text("CKA:Q", format=".2f"),
                                              color=alt.condition("datum.CKA > 0.6", alt.value("black"), alt.value("white")))
    return (cells + text).properties(title=title, width=300, height=260)


def similarity_view(runs: list[str]) -> None:
    pairs = rep.pair_grids(runs)
    if pairs is None:
        return
    grid0 = next(iter(pairs.values()))
    st.caption(f"Linear CKA on {grid0['images']:,} test images: {grid0['estimator']}. 1 = the same "
               f"representation up to rotation and scale; `pixels` is the input itself. Spread: {grid0['spread']}.")
    names = [rep.short(r) for r in runs]
    c1, c2 = st.columns(2)
    a = c1.selectbox("rows: run", runs, format_func=rep.short, index=0, key="cka_a")
    b = c2.selectbox("columns: run", runs, format_func=rep.short, index=min(1, len(runs) - 1), key="cka_b")
    grid = pairs.get(f"{a}|{b}") or _transposed(pairs[f"{b}|{a}"])
    st.altair_chart(cka_heatmap(grid, f"{rep.short(a)} × {rep.short(b)}, every layer"))
    layers = sorted({x for g in pairs.values() for x in g["layers_a"]}, key=lambda x: (x != "pixels", x))
    layer = st.selectbox("layer for the runs × runs map", layers, index=layers.index("block3") if "block3" in layers else 0)
    rows = []
    for i, ra in enumerate(runs):
        for j, rb in enumerate(runs):
            g = pairs.get(f"{ra}|{rb}") or _transposed(pairs[f"{rb}|{ra}"])
            v = (g["cka"][g["layers_a"].index(layer)][g["layers_b"].index(layer)]
                 if layer in g["layers_a"] and layer in g["layers_b"] else None)
            rows.append({"run A": names[i], "run B": names[j], "CKA": v, "layer": layer})
    df = pd.DataFrame(rows)
    chart = alt.Chart(df).mark_rect().encode(
        x=alt.X("run B:N", sort=names), y=alt.Y("run A:N", sort=names),
        color=alt.Color("CKA:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")),
        tooltip=["run A:N", "run B:N", "layer:N", alt.Tooltip("CKA:Q", format=".3f")])
    st.altair_chart((chart + chart.mark_text(fontSize=11).encode(text=alt.Text("CKA:Q", format=".2f"),
                                                                 color=alt.value("white"))).properties(
        title=f"runs × runs at {layer}", width=360, height=300))


def _transposed(g: dict) -> dict:
    t = {**g, "a": g["b"], "b": g["a"], "layers_a": g["layers_b"], "layers_b": g["layers_a"],
         "cka": [list(r) for r in zip(*g["cka"])]}
    if "cka_std" in g:
        t["cka_std"] = [list(r) for r in zip(*g["cka_std"])]
    return t


def probes_view(runs: list[str]) -> None:
    rows = rep.probe_rows(runs)
    if rows is None:
        return
    df = pd.DataFrame(rows)
    pixels = df[df.run == "pixels"].iloc[0]
    df = df[df.run != "pixels"].assign(run=lambda d: d.run.map(rep.short))
    metric = st.radio("probe", ["linear_probe_accuracy", "knn_accuracy"], horizontal=True,
                      format_func=lambda m: "linear probe" if m.startswith("linear") else "cosine kNN (k = 10)")
    order = list(dict.fromkeys(df.layer))
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("layer:N", sort=order), y=alt.Y(f"{metric}:Q", scale=alt.Scale(zero=False), title="test accuracy"),
        color="run:N", tooltip=["run", "layer", alt.Tooltip(f"{metric}:Q", format=".4f")])
    base = alt.Chart(pd.DataFrame({"y": [pixels[metric]], "what": ["raw pixels"]})).mark_rule(
        strokeDash=[4, 4], color="gray").encode(y="y:Q", tooltip=["what", alt.Tooltip("y:Q", format=".4f")])
    st.altair_chart((lines + base).properties(title="class information per layer (dashed: raw pixels)", height=340),
                    width="stretch")
    st.caption("Fitted on the first 10,000 training-split images, scored on the test images; layers wider than 256 "
               "values are first reduced by a fixed random projection (the same for every run), so a linear probe's "
               "accuracy is a lower bound of the whole layer's.")
    st.dataframe(df.pivot(index="layer", columns="run", values=metric).reindex(index=order,
                                                                             columns=list(dict.fromkeys(df.run))))


def maps_chart(coords: np.ndarray, labels: np.ndarray, names: list[str]) -> alt.HConcatChart:
    """One map per run, side by side; one brush shared by all, so brushing one highlights the same images in all."""
    df = pd.DataFrame({"index": np.arange(coords.shape[1]), "class": [lib.CLASS_NAMES[c] for c in labels]})
    for i in range(len(names)):
        df[f"x{i}"], df[f"y{i}"] = coords[i, :, 0], coords[i, :, 1]
    brush = alt.selection_interval(name="brush", resolve="global")
    color = alt.condition(brush, alt.Color("class:N", sort=list(lib.CLASS_NAMES), scale=alt.Scale(scheme="tableau10")),
                          alt.value("lightgray"))
    # The same brush on every map; Altair lifts it to the top once (and says so: the intent here).
    charts = [alt.Chart(df, title=name).mark_circle(size=12, opacity=0.8).encode(
        x=alt.X(f"x{i}:Q", axis=None), y=alt.Y(f"y{i}:Q", axis=None), color=color,
        tooltip=["index:Q", "class:N"]).add_params(brush).properties(width=260, height=260)
        for i, name in enumerate(names)]
    return alt.hconcat(*charts)


def maps_view(runs: list[str]) -> None:
    layers = rep.layers_of(runs)
    common = [x for x in next(iter(layers.values()), []) if all(x in v for v in layers.values())]
    if not common:
        st.info("These runs share no layer name; choose runs of one architecture.")
        return
    c1, c2 = st.columns(2)
    layer = c1.selectbox("layer", common, index=common.index("block3") if "block3" in common else len(common) - 1)
    n = c2.select_slider("test images", [1000, 2000, 5000], value=2000)
    maps = rep.aligned_maps(runs, layer, n)
    if maps is None:
        return
    _, labels = cache.test_arrays()
    n = maps["coords"].shape[1]
    st.caption(f"UMAP of each run's `{layer}` features of the first {n:,} test images, each map rotated onto the "
               "first by a Procrustes fit. **Drag a rectangle on any map**: the same images light up in all.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Automatically deduplicated selection parameter")
        st.altair_chart(maps_chart(maps["coords"], labels[:n], [rep.short(r) for r in runs]), key="maps")


def _input_image() -> np.ndarray | None:
    images, labels = cache.test_arrays()
    source = st.radio("input", ["a test image", "a drawing or an upload"], horizontal=True)
    if source == "a test image":
        i = int(st.number_input("test image", 0, len(images) - 1, 0))
        st.image(tile(images[[i]], 1, scale=4), caption=lib.CLASS_NAMES[labels[i]])
        return images[i]
    up = st.file_uploader("an image of a garment", type=["png", "jpg", "jpeg", "gif", "bmp", "webp"])
    if up is None:
        st.info("Upload a picture (drawings come from the Classify page's canvas, saved as a PNG).")
        return None
    try:
        pre = lib.preprocess_bytes(up.getvalue(), up.name)
    except lib.ImageInputError as e:
        st.warning(str(e))
        return None
    st.image(tile(pre.input[None], 1, scale=4), caption="the 28×28 input")
    return np.round(pre.input * 255).astype(np.uint8)


def input_view(runs: list[str]) -> None:
    image = _input_image()
    if image is None:
        return
    shown = st.slider("channels shown per layer", 4, 64, 16)
    for run, acts in rep.activations(runs, image).items():
        st.markdown(f"**{rep.short(run)}**")
        cols = st.columns([1] + [2] * (len(acts) - 1))
        cols[0].image(tile(rep.filters(run), 8, scale=6),
                      caption="first layer's filters")
        for col, (name, a) in zip(cols[1:], list(acts.items())[1:]):
            maps = a if a.ndim == 3 else a.reshape(1, 1, -1)
            maps = maps[:shown]
            lo, hi = maps.min(), maps.max()
            col.image(tile((maps - lo) / (hi - lo) if hi > lo else maps * 0, min(8, len(maps)),
                           scale=max(1, 56 // maps.shape[-2])), caption=f"{name} {tuple(a.shape)}")


def attributions_view(runs: list[str]) -> None:
    image = _input_image()
    if image is None:
        return
    methods = tuple(st.multiselect("methods", rep.METHODS, default=list(rep.METHODS)))
    out = rep.attribution_maps(runs, image, methods)
    if out is None:
        return
    if not out:
        st.info("Choose classifier runs in the sidebar: an autoencoder has no answer to explain.")
        return
    for run, r in out.items():
        st.markdown(f"**{rep.short(run)}** — explains its answer *{lib.CLASS_NAMES[r['target']]}*")
        cols = st.columns(len(r["maps"]))
        for col, (m, a) in zip(cols, r["maps"].items()):
            col.image(tile(np.abs(a)[None], 1, scale=5), caption=m, clamp=True)
    st.caption(rep.SANITY_NOTE)


def representations() -> None:
    st.title("Representations")
    st.caption("What each run's layers hold and how the transfer schemes differ, layer by layer. Results are "
               "computed once per run's weights and cached; the reference runs' ship with the app.")
    runs = rep.chosen_runs()
    if cache.test_set() is None:
        return
    if not runs:
        if not rep.any_runs():
            cache.missing_models_message("no run with weights in this store")
        else:
            st.info("Choose one or more runs in the sidebar.")
        return
    view = st.radio("view", VIEWS, horizontal=True, key="repr_view")
    {VIEWS[0]: similarity_view, VIEWS[1]: probes_view, VIEWS[2]: maps_view, VIEWS[3]: input_view,
     VIEWS[4]: attributions_view}[view](runs)


representations()
