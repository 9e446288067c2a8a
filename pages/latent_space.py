"""Latent space: a UMAP map of the test set's codes, and interpolation between two garments."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_app import cache, lib, picker
from fmnist_app.images import tile


def map_chart(points: pd.DataFrame, path: pd.DataFrame | None, picks: pd.DataFrame) -> alt.Chart:
    # nearest: a click anywhere picks the closest garment (the points are a few pixels wide).
    pick = alt.selection_point(name="pick", fields=["index"], on="click", nearest=True)
    base = alt.Chart(points).mark_circle(size=14, opacity=0.7).encode(
        x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None),
        color=alt.Color("class:N", sort=list(lib.CLASS_NAMES), scale=alt.Scale(scheme="tableau10")),
        tooltip=["index:Q", "class:N", "image:N"]).add_params(pick)
    layers = [base]
    if path is not None:
        layers.append(alt.Chart(path).mark_line(color="black", strokeWidth=2).encode(x="x:Q", y="y:Q", order="t:Q"))
    layers.append(alt.Chart(picks).mark_point(shape="diamond", size=220, filled=True, color="black").encode(
        x="x:Q", y="y:Q", tooltip=["label:N"]))
    return alt.layer(*layers).properties(height=560)


def garment_picker_ui(where, labels: np.ndarray, slot: str, default: int) -> int:
    key = f"pick_{slot}"
    if key not in st.session_state:
        st.session_state[key] = default
    return int(where.number_input(f"garment {slot} (test index)", 0, len(labels) - 1, key=key))


def latent_space() -> None:
    st.title("Latent space")
    run = picker.chosen_autoencoder()
    test = cache.test_set()
    lmap = cache.latent_map(run) if test is not None else None
    if lmap is None:
        return
    images, labels = test
    st.caption(f"Autoencoder run `{run}`. UMAP of the 10,000 test codes ({cache.code_shape(run)} → PCA → 2-d), "
               f"computed once per run ({lmap.seconds:.0f} s) and cached on disk. Hover a point to see the "
               "garment; click two points to interpolate between them.")
    shown = st.select_slider("points shown", [1000, 2500, 5000, 10000], value=2500)

    # A click on the map sets garment A, then B, alternately (before the inputs are drawn).
    event = st.session_state.get("map")
    clicked = (event or {}).get("selection", {}).get("pick") if isinstance(event, dict) else None
    if clicked:
        idx = int(clicked[0]["index"])
        if idx not in (st.session_state.get("pick_A"), st.session_state.get("pick_B")):
            slot = st.session_state.get("next_slot", "A")
            st.session_state[f"pick_{slot}"] = idx
            st.session_state["next_slot"] = "B" if slot == "A" else "A"

    c1, c2, c3 = st.columns(3)
    a = garment_picker_ui(c1, labels, "A", int(np.flatnonzero(labels == 0)[0]))
    b = garment_picker_ui(c2, labels, "B", int(np.flatnonzero(labels == 9)[0]))
    steps = c3.slider("frames", 3, 16, 9)
    c1.image(tile(images[[a]], 1, scale=3), caption=f"A: {lib.CLASS_NAMES[labels[a]]}")
    c2.image(tile(images[[b]], 1, scale=3), caption=f"B: {lib.CLASS_NAMES[labels[b]]}")

    z = cache.encode(run, images[[a, b]])
    path_codes = lib.interpolate(z[0], z[1], steps)
    frames = cache.decode(run, path_codes)
    coords = lmap.place(path_codes)
    path = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "t": np.arange(steps)})
    picks = pd.DataFrame({"x": lmap.coords[[a, b], 0], "y": lmap.coords[[a, b], 1], "label": ["A", "B"]})

    st.altair_chart(map_chart(cache.map_frame(run, shown), path, picks), width="stretch",
                    on_select="rerun", selection_mode="pick", key="map")
    st.subheader("Decoded frames along the straight path from A to B")
    st.image(tile(frames, cols=steps, scale=3))
    t = st.slider("position on the path", 0, steps - 1, steps // 2)
    left, right = st.columns([1, 3])
    left.image(tile(frames[[t]], 1, scale=6), caption=f"frame {t} of {steps - 1}")
    right.markdown("Each frame decodes the code (1 − t)·z_A + t·z_B. The black line on the map is where "
                   "those codes fall among the test set's codes (placed by their nearest neighbours).")


latent_space()
