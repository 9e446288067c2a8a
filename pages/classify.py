"""Classify: draw or upload a garment; see the 28x28 input, the chosen classifiers, the reconstruction."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_app import cache, lib, picker
from fmnist_app import representations as rep
from fmnist_app.images import tile


def input_ui():
    """The user's image as (source name, PIL image or RGBA array, or bytes), or None."""
    tab_draw, tab_upload = st.tabs(["Draw", "Upload"])
    with tab_upload:
        up = st.file_uploader("an image of a garment (PNG, JPEG, GIF, BMP, WEBP, TIFF)",
                              type=["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"])
    with tab_draw:
        drawn = None
        try:
            from streamlit_drawable_canvas import st_canvas
            c1, c2 = st.columns([3, 1])
            with c2:
                width = st.slider("stroke", 4, 30, 14)
                mode = st.radio("tool", ["freedraw", "line", "rect", "circle"], horizontal=False)
            with c1:
                res = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                                height=280, width=280, drawing_mode=mode, return_image_data=True, key="canvas")
            data = getattr(res, "image_data", None) if res is not None else None
            if data is not None and np.asarray(data)[..., :3].max() > 0:
                drawn = np.asarray(data).astype(np.uint8)
        except Exception as e:               # the canvas component is optional: upload still works
            st.info(f"The drawing canvas is unavailable here ({type(e).__name__}); use Upload.")
    if up is not None:
        return up.name, up.getvalue()
    if drawn is not None:
        return "your sketch", drawn
    return None


def classify_input(source) -> "object | None":
    name, payload = source
    try:
        return lib.preprocess_bytes(payload, name) if isinstance(payload, bytes) else lib.preprocess(payload)
    except lib.ImageInputError as e:
        st.warning(f"{e}")
        return None


def probabilities_chart(probs: dict) -> alt.Chart:
    rows = [{"model": m, "class": lib.CLASS_NAMES[c], "probability": float(p[0][c])}
            for m, p in probs.items() for c in range(10)]
    return alt.Chart(pd.DataFrame(rows)).mark_bar().encode(
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("class:N", sort=list(lib.CLASS_NAMES), title=None),
        color=alt.Color("model:N", legend=None), column=alt.Column("model:N", sort=list(probs), title=None),
        tooltip=["model", "class", alt.Tooltip("probability:Q", format=".3f")]).properties(width=150, height=220)


def chosen_for_input(drawn: bool, sidebar: dict[str, str]) -> dict[str, str]:
    """The classifier chosen for this kind of input first (stated on the page), the sidebar's choice
    one click away; the sidebar's choice alone where the chosen run is not in the store."""
    choice = cache.input_choice("drawing" if drawn else "upload")
    if choice.run_id is None:
        st.info(f"{choice.missing} Showing the classifiers chosen in the sidebar.")
        return sidebar
    other = cache.input_choice("upload" if drawn else "drawing").label or "the sidebar's choice"
    st.caption(f"{'Drawings' if drawn else 'Uploads'} are read by **{choice.label}** (`{choice.run_id}`): "
               f"{choice.why}. {'Uploads' if drawn else 'Drawings'} go to `{other}`.")
    runs = {choice.label: choice.run_id}
    if st.toggle("compare with the classifiers chosen in the sidebar (the reference four by default)",
                 key="compare_sidebar"):
        runs.update({k: r for k, r in sidebar.items() if r != choice.run_id})
    return runs


def classify() -> None:
    st.title("Classify your own garment")
    st.caption("Draw a garment (light on dark, like the data set; an outline is filled in) or upload a photo. "
               "The image is brought to Fashion-MNIST's form — polarity, background, crop, 28×28 — and given "
               "to the classifier chosen for that kind of input: `sketch-robust`, trained on drawings, for the "
               "canvas; the best on product photos for uploads. The runs chosen in the sidebar are one click away.")
    sidebar = picker.chosen_classifiers()
    ae = cache.reference_ids()["autoencoder"]
    source = input_ui()
    if source is None:
        st.info("Draw something or upload an image to classify it.")
        return
    runs = chosen_for_input(not isinstance(source[1], bytes), sidebar)
    if not runs:
        st.info("Choose one or more classifier runs in the sidebar.")
        return
    predictor = cache.predictor(runs, ae)
    if predictor is None:
        return
    pre = classify_input(source)
    if pre is None:
        return
    st.subheader("What the models see")
    cols = st.columns(len(pre.steps))
    for col, (step, img) in zip(cols, pre.steps):
        col.image(np.clip(img, 0, 1), caption=step, width=120 if step != "input" else 140, clamp=True)
    probs = predictor.predict_proba(pre.input[None])
    st.subheader({1: "One classifier", 4: "Four classifiers"}.get(len(probs), f"{len(probs)} classifiers"))
    verdicts = st.columns(len(probs))
    for col, (m, p) in zip(verdicts, probs.items()):
        col.metric(m, lib.CLASS_NAMES[int(p[0].argmax())], f"{p[0].max():.0%}", delta_color="off")
    st.altair_chart(probabilities_chart(probs))
    left, right = st.columns(2)
    rec = predictor.reconstruct(pre.input[None])
    left.image(tile(np.stack([pre.input, rec[0]]), cols=2, scale=5),
               caption=f"input and the reference autoencoder's reconstruction (`{ae}`)")
    lmap = cache.latent_map(ae)
    if lmap is not None:
        where = lmap.place(cache.encode(ae, pre.input[None]))
        df = pd.DataFrame({"x": lmap.coords[::4, 0], "y": lmap.coords[::4, 1],
                           "class": [lib.CLASS_NAMES[c] for c in lmap.labels[::4]]})
        dots = alt.Chart(df).mark_circle(size=8, opacity=0.5).encode(
            x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None),
            color=alt.Color("class:N", sort=list(lib.CLASS_NAMES), scale=alt.Scale(scheme="tableau10")))
        you = alt.Chart(pd.DataFrame({"x": where[:, 0], "y": where[:, 1]})).mark_point(
            shape="cross", size=400, color="black", strokeWidth=3).encode(x="x:Q", y="y:Q")
        right.altair_chart((dots + you).properties(height=300, title="your input on the latent map"), width="stretch")
    attributions_ui(runs, pre.input)


def attributions_ui(runs: dict[str, str], image) -> None:
    """Which pixels drove each classifier's answer (captum), side by side; more on the Representations page."""
    with st.expander("Which pixels drove each answer (saliency, integrated gradients, Grad-CAM)"):
        out = rep.attribution_maps(list(runs.values()), np.round(image * 255).astype(np.uint8), rep.METHODS)
        if not out:
            return
        for (name, rid), cols in zip(runs.items(), [st.columns(len(rep.METHODS) + 1) for _ in runs]):
            cols[0].markdown(f"**{name}**: {lib.CLASS_NAMES[out[rid]['target']]}")
            for col, (method, a) in zip(cols[1:], out[rid]["maps"].items()):
                col.image(tile(np.abs(a)[None], 1, scale=4), caption=method, clamp=True)
        st.caption(rep.SANITY_NOTE)


classify()
