"""Reconstructions: originals beside an autoencoder run's output, per-image error, across epochs."""
import numpy as np
import streamlit as st

from fmnist_app import cache, lib, picker
from fmnist_app.images import tile


def pick_images_ui(labels: np.ndarray) -> tuple[int, ...]:
    c1, c2, c3 = st.columns(3)
    choice = c1.selectbox("images", ["random", *lib.CLASS_NAMES])
    count = c2.slider("how many", 4, 24, 12, step=4)
    seed = c3.number_input("draw", 0, 10_000, 0, help="change to draw other images")
    rng = np.random.default_rng(int(seed))
    pool = np.arange(len(labels)) if choice == "random" else np.flatnonzero(labels == lib.CLASS_NAMES.index(choice))
    return tuple(int(i) for i in np.sort(rng.choice(pool, size=count, replace=False)))


def reconstructions() -> None:
    st.title("Reconstructions")
    run = picker.chosen_autoencoder()
    test = cache.test_set()
    if test is None or cache.autoencoder(run) is None:
        return
    images, labels = test
    st.caption(f"Autoencoder run `{run}` (choose another in the sidebar), last-epoch weights.")
    indices = pick_images_ui(labels)
    originals = images[list(indices)].astype(np.float32) / 255.0
    rec = cache.reconstructions(run, "last", indices)
    err = ((rec - originals) ** 2).mean(axis=(1, 2))
    st.subheader("Original (top) and reconstruction (bottom)")
    cols = st.columns(len(indices))
    for col, i, o, r, e in zip(cols, indices, originals, rec, err):
        col.image(tile(np.stack([o, r]), cols=1, scale=3), caption=f"#{i} {lib.CLASS_NAMES[labels[i]]}\nMSE {e:.4f}")
    st.caption(f"Mean squared error per pixel on the [0, 1] scale; mean over these images {err.mean():.4f}.")

    m = cache.manifest(run)
    snaps = sorted(r for r in m["roles"] if r.startswith("snap.")) if m else []
    if snaps:
        st.subheader("The same images over training")
        rows = [("original", originals)] + [(f"epoch {int(role.split('.e')[1])}", cache.reconstructions(run, role, indices))
                                            for role in snaps]
        for name, row in rows:
            label, strip = st.columns([1, 9], vertical_alignment="center")
            label.markdown(f"**{name}**")
            strip.image(tile(row, cols=len(indices), scale=2))


reconstructions()
