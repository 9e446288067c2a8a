"""Confusion: the chosen classifier runs' row-normalized confusion matrices on one colour scale; click a cell."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_app import cache, lib, picker
from fmnist_app.images import tile


def matrix_chart(conf: np.ndarray, name: str) -> alt.Chart:
    n = len(lib.CLASS_NAMES)
    df = pd.DataFrame({"true": np.repeat(lib.CLASS_NAMES, n), "predicted": np.tile(lib.CLASS_NAMES, n),
                       "share": conf.ravel()})
    pick = alt.selection_point(name="cell", fields=["true", "predicted"], on="click")
    # Every class name on both axes: Vega drops overlapping labels by default, which hid half of them.
    axis = dict(labelOverlap=False, labelLimit=120, labelFontSize=11)
    base = alt.Chart(df).encode(
        x=alt.X("predicted:N", sort=list(lib.CLASS_NAMES), axis=alt.Axis(labelAngle=-40, **axis)),
        y=alt.Y("true:N", sort=list(lib.CLASS_NAMES), axis=alt.Axis(**axis)))
    rect = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), title="share of row"),
        tooltip=["true", "predicted", alt.Tooltip("share:Q", format=".3f")]).add_params(pick)
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("share:Q", format=".2f"),
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")))
    return (rect + text).properties(title=name, height=420)


def confusion() -> None:
    st.title("Confusion matrices")
    runs = picker.chosen_classifiers()
    if not runs:
        st.info("Choose one or more classifier runs in the sidebar.")
        return
    preds = cache.test_predictions(runs)
    if not preds:
        return
    images, labels = cache.test_set()
    st.caption("Test set, last-epoch weights. Each row is normalized by its true class, so it sums to 1 "
               "and reads as P(predicted | true). Click a cell to see the images behind it.")
    cells: dict[str, tuple] = {}              # model -> (true, predicted) of its selected cell
    cols = st.columns(2)
    for i, name in enumerate(preds):
        conf = lib.normalized_confusion(labels, preds[name])
        with cols[i % 2]:
            event = st.altair_chart(matrix_chart(conf, f"{name}: accuracy {(preds[name] == labels).mean():.4f}"),
                                    width="stretch", on_select="rerun", selection_mode="cell", key=f"cm_{name}")
            cell = (event or {}).get("selection", {}).get("cell") if isinstance(event, dict) else None
            if cell:
                cells[name] = (cell[0]["true"], cell[0]["predicted"])
            pairs = lib.most_confused_pairs(conf, 3)
            st.caption("Most confused: " + "; ".join(
                f"{lib.CLASS_NAMES[t]} → {lib.CLASS_NAMES[p]} {s:.1%}" for t, p, s in pairs))

    st.subheader("Images behind a cell")
    c1, c2, c3 = st.columns(3)
    # Defaults and clicks both go through Session State (a widget given both warns in the app). Each
    # chart keeps its selection, so only a cell that changed since the last run counts as a click;
    # the boxes stay free to change meanwhile.
    before = st.session_state.get("cm_cells", {})
    st.session_state["cm_cells"] = cells
    clicked = [(name, *cell) for name, cell in cells.items() if before.get(name) != cell]
    names = list(preds)
    if st.session_state.get("cm_model") not in names:
        st.session_state.pop("cm_model", None)
    for k, v in zip(("cm_model", "cm_true", "cm_pred"), clicked[-1] if clicked else
                    (names[0], "Shirt", "T-shirt/top")):
        if clicked or k not in st.session_state:
            st.session_state[k] = v
    name = c1.selectbox("model", names, key="cm_model")
    true = c2.selectbox("true class", lib.CLASS_NAMES, key="cm_true")
    pred = c3.selectbox("predicted class", lib.CLASS_NAMES, key="cm_pred")
    hits = np.flatnonzero((labels == lib.CLASS_NAMES.index(true)) & (preds[name] == lib.CLASS_NAMES.index(pred)))
    st.write(f"{len(hits)} test images of class **{true}** predicted as **{pred}** by **{name}**"
             + (" (first 40 shown)." if len(hits) > 40 else "."))
    if len(hits):
        st.image(tile(images[hits[:40]], cols=10, scale=2))


confusion()
