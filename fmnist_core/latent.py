"""Latent-space tools: encode, a UMAP map cached on disk, interpolation, decoding.

The map of the 10,000 test images is computed once per autoencoder checkpoint and stored as an
npz (no pickles) beside the checkpoints. New points (a user's sketch, an interpolation path) are
placed on the map by their nearest test latents in PCA space, which needs no stored reducer.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .inference import model_input, output_to_unit
from .runs import RunStore
from .store import CheckpointError, cached_arrays

PCA_DIMS = 50          # UMAP runs on a PCA reduction of the 3,136-d codes: same map, far faster
NEIGHBOURS = 15
UMAP_EPOCHS = 200      # UMAP's own choice above 10,000 points; its 500 for smaller sets took 8.4 s, not 3.5

_numba_cache_on = False


def enable_numba_cache() -> int:
    """Let numba keep umap-learn's compiled functions on disk; returns how many were switched on.

    Most are not declared with cache=True, so every new process compiled them again; with the cache a
    later process loads them (benchmarks/latent_map.py measures both). Idempotent; a failure leaves
    numba as it was.
    """
    global _numba_cache_on
    if _numba_cache_on:
        return 0
    _numba_cache_on = True
    import importlib
    import pkgutil
    try:
        from numba.core.registry import CPUDispatcher
        import umap
    except ImportError:
        return 0
    import warnings
    from numba.core.errors import NumbaWarning
    # The few that cannot be cached (they hold ctypes pointers) say so once each; that is expected.
    warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
    enabled = 0
    for package in (umap,):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if info.name.rsplit(".", 1)[-1] in ("parametric_umap", "plot", "aligned_umap"):
                continue                  # optional parts: they print install hints when imported
            try:
                module = importlib.import_module(info.name)
            except Exception:             # optional parts (parametric UMAP, plotting) need more packages
                continue
            for obj in vars(module).values():
                if isinstance(obj, CPUDispatcher) and type(obj._cache).__name__ == "NullCache":
                    try:
                        obj.enable_caching()
                        enabled += 1
                    except Exception:     # a function numba cannot cache stays compiled per process
                        pass
    return enabled


@torch.inference_mode()
def encode(autoencoder: torch.nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Latent codes (N, *code shape) float32 of images (N, 28, 28) in [0, 1] or uint8: (N, 64, 7, 7)
    for the reference network, (N, n) with a linear bottleneck."""
    out = [autoencoder.encoder(model_input(autoencoder, images[i:i + batch_size])).cpu().numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


@torch.inference_mode()
def decode(autoencoder: torch.nn.Module, latents: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) in [0, 1] decoded from latent codes (N, *code shape)."""
    device = next(autoencoder.parameters()).device
    z = torch.as_tensor(latents, dtype=torch.float32, device=device)
    return output_to_unit(autoencoder, autoencoder.decoder(z))[:, 0].cpu().numpy()


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int = 9) -> np.ndarray:
    """Straight path of `steps` codes from z_a to z_b inclusive: (steps, *z_a.shape)."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape(-1, *([1] * z_a.ndim))
    return (1 - t) * z_a[None] + t * z_b[None]


def warm_up(points: int = 2000, seed: int = 0) -> float:
    """Fit a map of random codes once so that numba's disk cache holds UMAP's compiled functions.

    Run once after installing (scripts/start.sh does, in the background): the first map of a new
    run then loads them instead of compiling. Returns seconds.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    LatentMap.fit(rng.standard_normal((points, 64, 7, 7), dtype=np.float32), np.zeros(points, np.int64), seed)
    return time.perf_counter() - t0


class LatentMap:
    """UMAP coordinates of a set of latent codes, with the PCA used to place new points."""

    def __init__(self, coords: np.ndarray, pca_mean: np.ndarray, pca_components: np.ndarray,
                 reduced: np.ndarray, labels: np.ndarray, seconds: float = 0.0):
        self.coords = coords                  # (N, 2) float32
        self.pca_mean = pca_mean              # (D,)
        self.pca_components = pca_components  # (PCA_DIMS, D)
        self.reduced = reduced                # (N, PCA_DIMS) the PCA codes of the mapped set
        self.labels = labels                  # (N,) int
        self.seconds = seconds                # how long the fit took

    @classmethod
    def fit(cls, latents: np.ndarray, labels: np.ndarray, seed: int = 0) -> "LatentMap":
        from sklearn.decomposition import PCA
        from sklearn.neighbors import NearestNeighbors
        import umap

        t0 = time.perf_counter()
        enable_numba_cache()
        flat = latents.reshape(len(latents), -1)
        pca = PCA(n_components=min(PCA_DIMS, *flat.shape), random_state=seed).fit(flat)
        reduced = pca.transform(flat).astype(np.float32)
        # Exact neighbours from scikit-learn (under a second for 10,000 points of 50 dims) instead of
        # pynndescent's approximate ones: pynndescent recompiles ~35 s of numba code in every new process.
        dist, idx = NearestNeighbors(n_neighbors=min(NEIGHBOURS, len(reduced))).fit(reduced).kneighbors(reduced)
        reducer = umap.UMAP(n_neighbors=idx.shape[1], min_dist=0.1, random_state=seed, n_jobs=1,
                            n_epochs=UMAP_EPOCHS, precomputed_knn=(idx, dist.astype(np.float32)))
        with warnings.catch_warnings():       # "no NNDescent index: transform unavailable": place() does that
            warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
            coords = reducer.fit_transform(reduced).astype(np.float32)
        return cls(coords, pca.mean_.astype(np.float32), pca.components_.astype(np.float32), reduced,
                   np.asarray(labels), time.perf_counter() - t0)

    def place(self, latents: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
        """Map coordinates (M, 2) for new codes: distance-weighted mean of their k nearest neighbours."""
        q = (latents.reshape(len(latents), -1) - self.pca_mean) @ self.pca_components.T
        d2 = (q ** 2).sum(1)[:, None] - 2 * q @ self.reduced.T + (self.reduced ** 2).sum(1)[None]
        idx = np.argpartition(d2, kth=min(k, d2.shape[1] - 1), axis=1)[:, :k]
        dist = np.sqrt(np.maximum(np.take_along_axis(d2, idx, 1), 0)) + 1e-6
        w = 1 / dist
        return ((self.coords[idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """As stored in the cache (the PCA codes as float16: they only pick neighbours)."""
        return {"coords": self.coords, "pca_mean": self.pca_mean, "pca_components": self.pca_components,
                "reduced": self.reduced.astype(np.float16), "labels": self.labels.astype(np.uint8),
                "seconds": np.float32(self.seconds)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "LatentMap":
        return cls(a["coords"], a["pca_mean"], a["pca_components"], a["reduced"].astype(np.float32),
                   a["labels"].astype(np.int64), float(a["seconds"]))

    @staticmethod
    def arrays_are_valid(a: dict[str, np.ndarray]) -> bool:
        n = len(a.get("coords", ()))
        return (set(a) >= {"coords", "pca_mean", "pca_components", "reduced", "labels", "seconds"}
                and a["coords"].shape == (n, 2) and len(a["reduced"]) == n == len(a["labels"]))


def map_path(store: RunStore, run_id: str, which: str = "last") -> Path:
    """Cache file of the map of an autoencoder run's `which` weights (named by their sha256)."""
    m = store.require(run_id)
    if which not in m["roles"]:
        raise CheckpointError(f"{run_id} has no {which!r} weights")
    digest = m["files"][m["roles"][which]][:12]
    return store.cache_path(f"umap-{which}-{digest}.npz")


def latent_map(store: RunStore, run_id: str, autoencoder: torch.nn.Module, images: np.ndarray,
               labels: np.ndarray, which: str = "last") -> LatentMap:
    """The cached map if present, else fit it on these images' codes and cache it."""
    arrays = cached_arrays(map_path(store, run_id, which),
                           lambda: LatentMap.fit(encode(autoencoder, images), labels).to_arrays(),
                           LatentMap.arrays_are_valid)
    return LatentMap.from_arrays(arrays)
