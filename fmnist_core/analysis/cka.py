"""Linear CKA between layers, with the unbiased HSIC estimator, in float64.

CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), K = X X^T and L = Y Y^T the linear Gram
matrices of two layers' features on the same images (Kornblith et al., 2019). HSIC is Song et al.'s
(2012) unbiased estimator

    HSIC_u(K, L) = [tr(K~ L~) + 1'K~1 1'L~1 / ((m-1)(m-2)) - 2/(m-2) 1'K~L~1] / (m (m-3)),

K~ being K with its diagonal set to zero. The biased estimator tr(KHLH)/(m-1)^2 inflates the
similarity of wide layers (a layer of 6,272 values on 1,000 images scores high against almost
anything); the unbiased one is near 0 for independent features at any width.

The images are taken in fixed blocks of `batch` (250 by default; 40 blocks for the test set) and
the HSIC terms averaged over blocks before the ratio is formed: the minibatch CKA of Nguyen et
al. (2021), which is also what `pytorch-cka` and `ckatorch` compute. Each block's estimate is
unbiased, so the mean is too. A block's Gram costs m*d per image, so the whole grid's work grows
with the block size m and not with n^2 (docs/representations.md compares block sizes).
The Grams are formed block by block as the network's activations arrive (`grams_of_blocks`), in
torch's float64 matrix product: features are never held whole, and the product runs on the same
thread pool as the network (numpy's BLAS pool, which spins after each call, fought torch's for the
cores). The blocks also give the spread: a bootstrap over blocks
(resampling the 40 blocks' terms with replacement) is a bootstrap over the images, in blocks,
without recomputing anything.

We wrote this (~100 lines) instead of depending on `pytorch-cka` 1.1.3 or `ckatorch` 1.0.3: both
take torch Gram matrices from their own hooked models and data loaders (neither takes stored
features), both pull matplotlib/seaborn in as hard requirements, `ckatorch`'s plain HSIC builds
an n x n centering matrix (O(n^3)), and neither reuses one layer's Grams across a whole grid.
Their unbiased formula is the one above; tests/test_representations.py checks ours against the
U-statistic's definition by brute force.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

ESTIMATOR = ("linear CKA, unbiased HSIC (Song et al. 2012), float64, averaged over blocks of {batch} "
             "images (minibatch CKA, Nguyen et al. 2021)")
DEFAULT_BATCH = 250


@dataclass
class Grams:
    """Per layer and block: the Gram matrix with a zero diagonal, its sum and its row sums."""
    k: np.ndarray        # (layers, blocks, m, m) float64
    total: np.ndarray    # (layers, blocks)
    rows: np.ndarray     # (layers, blocks, m)

    @property
    def m(self) -> int:
        return self.k.shape[-1]


def blocks(n: int, batch: int | None = DEFAULT_BATCH) -> tuple[int, int]:
    """(blocks, images per block) for n images: one block of all where n < 2 * batch."""
    if n < 4:
        raise ValueError(f"CKA needs at least 4 images, got {n}")
    if batch is None or n < 2 * batch:
        return 1, n
    return n // batch, batch


def _gram(x, out: np.ndarray) -> None:
    """out <- the float64 Gram of one block's (m, d) features, centred on the block's mean."""
    x = torch.as_tensor(x)
    x = x.reshape(len(x), -1).to(torch.float64)
    x = x - x.mean(0)          # the estimator ignores the mean; removing it saves precision
    torch.mm(x, x.T, out=torch.from_numpy(out))


def grams_of_blocks(per_block: Iterable[Sequence], layers: int, nblocks: int, m: int) -> Grams:
    """The Grams of `layers` layers from `nblocks` blocks of m images each, a block's features
    coming as one (m, ...) array or tensor per layer (streamed: a block is not kept)."""
    k = np.empty((layers, nblocks, m, m))
    j = -1
    for j, feats in enumerate(per_block):
        if len(feats) != layers or any(len(f) != m for f in feats):
            raise ValueError(f"block {j} has {[len(f) for f in feats]} images per layer, expected {layers} x {m}")
        for i, f in enumerate(feats):
            _gram(f, k[i, j])
    if j != nblocks - 1:
        raise ValueError(f"{j + 1} blocks of features, expected {nblocks}")
    idx = np.arange(m)
    k[:, :, idx, idx] = 0.0
    rows = k.sum(-1)
    return Grams(k, rows.sum(-1), rows)


def grams(features: list[np.ndarray], batch: int | None = DEFAULT_BATCH) -> Grams:
    """The Grams of each layer's features (N, ...) on the same N images, in float64."""
    n = len(features[0])
    for i, f in enumerate(features):
        if len(f) != n:
            raise ValueError(f"layer {i} has {len(f)} images, the first {n}")
    b, m = blocks(n, batch)
    return grams_of_blocks(([np.asarray(f[j * m:(j + 1) * m]) for f in features] for j in range(b)),
                           len(features), b, m)


def hsic_blocks(a: Grams, b: Grams) -> np.ndarray:
    """Unbiased HSIC per pair of layers and block: (layers_a, layers_b, blocks)."""
    if a.k.shape[1:] != b.k.shape[1:]:
        raise ValueError("the two sets of Grams are not on the same images")
    m = a.m
    trace = np.einsum("abij,cbij->acb", a.k, b.k, optimize=True)
    middle = a.total[:, None] * b.total[None] / ((m - 1) * (m - 2))
    right = np.einsum("abi,cbi->acb", a.rows, b.rows) * (2.0 / (m - 2))
    return (trace + middle - right) / (m * (m - 3))


def self_hsic(a: Grams) -> np.ndarray:
    """HSIC of each layer with itself, per block: (layers, blocks)."""
    m = a.m
    trace = np.einsum("abij,abij->ab", a.k, a.k, optimize=True)
    right = np.einsum("abi,abi->ab", a.rows, a.rows) * (2.0 / (m - 2))
    return (trace + a.total ** 2 / ((m - 1) * (m - 2)) - right) / (m * (m - 3))


def _ratio(xy: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt(np.clip(xx[:, None] * yy[None], 0, None))
        return np.where(denom > 0, xy / np.where(denom > 0, denom, 1), np.nan)


def cka_from_grams(a: Grams, b: Grams, bootstrap: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """{"cka": (La, Lb)} and, with `bootstrap` resamples of the blocks, {"std", "low", "high"} (2.5 and
    97.5 percentiles). One block gives no spread (std NaN)."""
    xy, xx, yy = hsic_blocks(a, b), self_hsic(a), self_hsic(b)
    out = {"cka": _ratio(xy.mean(-1), xx.mean(-1), yy.mean(-1))}
    nb = xy.shape[-1]
    if bootstrap:
        if nb < 2:
            nan = np.full_like(out["cka"], np.nan)
            return {**out, "std": nan, "low": nan, "high": nan}
        rng = np.random.default_rng(seed)
        counts = np.stack([np.bincount(rng.integers(0, nb, nb), minlength=nb) for _ in range(bootstrap)]) / nb
        boot = np.stack([_ratio(xy @ w, xx @ w, yy @ w) for w in counts])
        out.update(std=boot.std(0, ddof=1), low=np.percentile(boot, 2.5, 0), high=np.percentile(boot, 97.5, 0))
    return out


def cka_grid(features_a: list[np.ndarray], features_b: list[np.ndarray], batch: int | None = DEFAULT_BATCH,
             bootstrap: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """Linear CKA of every layer in `features_a` against every layer in `features_b` (same images)."""
    ga = grams(features_a, batch)
    gb = ga if features_b is features_a else grams(features_b, batch)
    return cka_from_grams(ga, gb, bootstrap, seed)


def linear_cka(x: np.ndarray, y: np.ndarray, batch: int | None = None) -> float:
    """CKA of two feature sets (N, ...) on the same images; one block of all N by default."""
    return float(cka_grid([x], [y], batch)["cka"][0, 0])
