"""Overview: the four schemes, the data set by class, what the reference runs scored, every run stored."""
import numpy as np
import pandas as pd
import streamlit as st

from fmnist_app import cache, lib
from fmnist_app.images import tile


def overview() -> None:
    st.title("Fashion-MNIST representation explorer")
    st.markdown(
        "In the reference protocol a convolutional **autoencoder** learns a 64×7×7 code by reconstructing "
        "garments. Four **classifiers** then put the same head (3136→128→10) on its encoder in four ways, "
        "so you can see what unsupervised pre-training buys. Other presets (the Training page) train the "
        "networks of the earlier reports the same way:")
    st.table(pd.DataFrame({"scheme": list(lib.SCHEME_DESCRIPTIONS),
                           "set-up": list(lib.SCHEME_DESCRIPTIONS.values())}).set_index("scheme"))

    test = cache.test_set()
    if test is not None:
        images, labels = test
        st.subheader("The data set, by class")
        per_class = 10
        rows = [images[np.flatnonzero(labels == c)[:per_class]] for c in range(10)]
        left, right = st.columns([1, 4])
        left.markdown("<br>".join(f"**{i}** {n}" for i, n in enumerate(lib.CLASS_NAMES)), unsafe_allow_html=True)
        right.image(tile(np.concatenate(rows), cols=per_class, scale=2),
                    caption="10 test images per class, one class per row (0 at the top)")

    st.subheader("The reference runs beside the published results")
    runs = {r["id"]: r for r in cache.summaries()}
    ref = cache.reference_ids()
    over_seeds = cache.table_one_over_seeds()
    rows = []
    for scheme in lib.SCHEMES:
        s = runs.get(ref[scheme])
        m = cache.manifest(ref[scheme]) if s and "error" not in s else None
        row = {"model": scheme, "run": ref[scheme], "epochs": "—", "test acc (last)": None,
               "test acc (best val.)": None, "val acc (last)": None,
               "test acc over seeds": _mean_std(over_seeds.get(scheme)),
               "reference val acc (50 ep.)": lib.REFERENCE_RESULTS[scheme]["val_acc"]}
        if s and "error" in s:
            row["epochs"] = "damaged: " + s["error"][:80]
        elif m and m["history"]:
            h = m["history"]
            row.update({"epochs": f"{len(h)}/{m['spec']['epochs']}", "test acc (last)": h[-1]["test_acc"],
                        "val acc (last)": h[-1]["val_acc"], "test acc (best val.)": h[m["best_epoch"] - 1]["test_acc"]})
        rows.append(row)
    st.dataframe(pd.DataFrame(rows).set_index("model"), width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("test acc (last)", "test acc (best val.)", "val acc (last)",
                                          "reference val acc (50 ep.)")})
    st.caption("*test acc over seeds*: the last epoch's test accuracy as mean ± std over the seeds of the "
               "study `r2026-table1` in the store (seeds 0–2 ship), since one run's noise is the size of the "
               "differences from the reference. The Compare page and docs/results.md have the full table.")
    ae = runs.get(ref["autoencoder"])
    if ae and ae.get("test_mse") is not None:
        st.caption(f"Autoencoder `{ae['id']}`: {ae['epochs_done']}/{ae['epochs']} epochs, test MSE "
                   f"{ae['test_mse']:.4f} (on the [-1, 1] scale). The reference's 'validation' set is the "
                   "official test set, so compare its column with our test accuracy.")
    recipe = cache.recipe_result()
    if recipe["seeds"]:
        spread = f" ± {recipe['std']:.4f}" if recipe["std"] is not None else ""
        st.caption(f"The same network as `scratch` with a better recipe (preset `recipe-scratch`: shifts, label "
                   f"smoothing, AdamW, a cosine schedule, 100 epochs, the best validation epoch): test accuracy "
                   f"**{recipe['mean']:.4f}{spread}** over {recipe['seeds']} seed{'s' * (recipe['seeds'] > 1)}. "
                   "The Compare page shows it as the study `beyond-recipe`.")
    if not any(ref[s] in runs for s in lib.SCHEMES):
        cache.missing_models_message("no reference classifier runs in " + ", ".join(map(str, cache.store().roots)))

    st.subheader(f"All runs in the store ({len(runs)})")
    if runs:
        st.dataframe(pd.DataFrame([{
            "run": r["id"], "kind": r.get("kind", "?"), "status": r.get("status", "damaged"),
            "epochs": f"{r['epochs_done']}/{r['epochs']}" if "error" not in r else r["error"][:80],
            "test acc / MSE": r.get("test_accuracy", r.get("test_mse")),
            "weights": "yes" if r.get("has_weights", True) else "history only"}
            for r in runs.values()]).set_index("run"),
            width="stretch", column_config={"test acc / MSE": st.column_config.NumberColumn(format="%.4f")})
        st.caption("Open a run on the Training page (the sidebar's run picker), or list them with "
                   "`python -m fmnist_core runs`.")
    else:
        st.caption("None yet: train on the Training page or with `python -m fmnist_core train`.")


def _mean_std(result: dict | None) -> str:
    """'0.9220 ± 0.0018 (3 seeds)', '0.9209 (1 seed)' or '—'."""
    if not result or result["mean"] is None:
        return "—"
    spread = f" ± {result['std']:.4f}" if result["std"] is not None else ""
    return f"{result['mean']:.4f}{spread} ({result['seeds']} seed{'s' * (result['seeds'] > 1)})"


overview()
