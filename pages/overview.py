"""Overview: the four schemes, the data set by class, and what the stored checkpoints scored."""
import numpy as np
import pandas as pd
import streamlit as st

import app_state as app


def overview() -> None:
    st.title("Fashion-MNIST representation explorer")
    st.markdown(
        "A convolutional **autoencoder** learns a 64×7×7 code by reconstructing garments. Four "
        "**classifiers** then put the same head (3136→128→10) on its encoder in four ways, so you "
        "can see what unsupervised pre-training buys:")
    st.table(pd.DataFrame({"scheme": list(app.SCHEME_DESCRIPTIONS),
                           "set-up": list(app.SCHEME_DESCRIPTIONS.values())}).set_index("scheme"))

    test = app.test_set()
    if test is not None:
        images, labels = test
        st.subheader("The data set, by class")
        per_class = 10
        rows = [images[np.flatnonzero(labels == c)[:per_class]] for c in range(10)]
        left, right = st.columns([1, 4])
        left.markdown("<br>".join(f"**{i}** {n}" for i, n in enumerate(app.CLASS_NAMES)), unsafe_allow_html=True)
        right.image(app.tile(np.concatenate(rows), cols=per_class, scale=2),
                    caption="10 test images per class, one class per row (0 at the top)")

    st.subheader("Stored checkpoints beside the published results")
    status = app.status()
    rows = []
    for name in app.CLASSIFIERS:
        s = status[name]
        ref = app.REFERENCE_RESULTS[name]
        row = {"model": name, "epochs": "—", "test acc (last)": None, "test acc (best val.)": None,
               "val acc (last)": None, "reference val acc (50 ep.)": ref["val_acc"]}
        if s.get("error"):
            row["epochs"] = "damaged: " + s["error"][:80]
        elif s["exists"]:
            h = app.history(name)
            row.update({"epochs": f"{s['epochs_done']}/{s['epochs']}", "test acc (last)": h[-1]["test_acc"],
                        "val acc (last)": h[-1]["val_acc"],
                        "test acc (best val.)": h[s["best_epoch"] - 1]["test_acc"]})
        rows.append(row)
    st.dataframe(pd.DataFrame(rows).set_index("model"), width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("test acc (last)", "test acc (best val.)", "val acc (last)",
                                          "reference val acc (50 ep.)")})
    ae = status[app.AUTOENCODER]
    if ae.get("exists") and not ae.get("error"):
        h = app.history(app.AUTOENCODER)
        st.caption(f"Autoencoder: {ae['epochs_done']}/{ae['epochs']} epochs, test MSE {h[-1]['test_loss']:.4f} "
                   "(on the [-1, 1] scale). The reference's 'validation' set is the official test set, "
                   "so compare its column with our test accuracy.")
    if not any(status[n].get("exists") for n in app.CLASSIFIERS):
        app.missing_models_message("no classifier checkpoints in " + str(app.store().root))


overview()
