"""Aligned 2-d maps of several runs' features at one layer, and one input through every layer.

Each run's features of the same test images are reduced by PCA to 50 dimensions and mapped by UMAP
(exact neighbours, as latent.py does); each map is then aligned to the first run's by an orthogonal
Procrustes fit (rotation, reflection, uniform scale, shift) on all points, so the same garment sits in
comparable places. The maps are cached per (runs' weights, layer, images), like the latent map.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from ..runs import RunStore
from ..store import cached_arrays
from .features import RepresentationError, extract, layer_names
from .represent import Run, _key

PCA_DIMS = 50
NEIGHBOURS = 15


def umap_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors
    import umap

    from ..latent import enable_numba_cache
    enable_numba_cache()
    flat = x.reshape(len(x), -1).astype(np.float32)
    k = min(PCA_DIMS, *flat.shape)
    reduced = PCA(n_components=k, random_state=seed).fit_transform(flat).astype(np.float32) if flat.shape[1] > k else flat
    dist, idx = NearestNeighbors(n_neighbors=min(NEIGHBOURS, len(reduced))).fit(reduced).kneighbors(reduced)
    reducer = umap.UMAP(n_neighbors=idx.shape[1], min_dist=0.1, random_state=seed, n_jobs=1, n_epochs=200,
                        precomputed_knn=(idx, dist.astype(np.float32)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        return reducer.fit_transform(reduced).astype(np.float32)


def procrustes_to(target: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` rotated (or reflected), scaled and shifted to lie closest to `target` (least squares)."""
    from scipy.linalg import orthogonal_procrustes
    mt, mp = target.mean(0), points.mean(0)
    t, p = target - mt, points - mp
    r, s = orthogonal_procrustes(p, t)
    return (p @ r * (s / max((p ** 2).sum(), 1e-12)) + mt).astype(np.float32)


def aligned_maps(store: RunStore, runs: list[Run], images: np.ndarray, layer: str, seed: int = 0) -> dict:
    """{"coords": (runs, N, 2), "runs": labels, "layer", "seconds"}, cached per weights and images."""
    for run in runs:
        if layer not in layer_names(run.model):
            raise RepresentationError(f"{run.label} has no layer {layer!r}; its layers are "
                                      f"{', '.join(layer_names(run.model))}")
    digest = __import__("hashlib").sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]

    def compute() -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        maps = []
        for run in runs:
            f = extract(run.model, images, [layer])[layer]
            m = umap_2d(f, seed)
            maps.append(m if not maps else procrustes_to(maps[0], m))
        return {"coords": np.stack(maps), "seconds": np.float32(time.perf_counter() - t0)}

    key = _key("maps", *[r.digest for r in runs], layer, digest, seed)
    r = cached_arrays(store.cache_path(f"maps-{key}.npz"), compute,
                      lambda a: a["coords"].shape == (len(runs), len(images), 2))
    return {"coords": r["coords"], "runs": [run.label for run in runs], "layer": layer, "seconds": float(r["seconds"])}


def one_input(run: Run, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's activation (shape per image) of one image (28, 28) through a run."""
    return {k: v[0] for k, v in extract(run.model, np.asarray(image)[None]).items()}


def first_filters(run: Run) -> np.ndarray:
    """The first convolution's kernels (C, k, k), each scaled to [0, 1] for display."""
    w = next(m for m in run.model.encoder.net if isinstance(m, torch.nn.Conv2d)).weight.detach()[:, 0].numpy()
    lo, hi = w.min(axis=(1, 2), keepdims=True), w.max(axis=(1, 2), keepdims=True)
    return (w - lo) / np.where(hi > lo, hi - lo, 1)
