"""How much class information a layer holds, read two ways: cosine kNN and a linear probe.

Both are fitted on features of training-split images and scored on the test images. A layer wider
than `MAX_DIMS` values is first reduced by a fixed Gaussian random projection to `MAX_DIMS` (the same
one for every run, seed 0): cosine similarities survive it to a few percent (Johnson-Lindenstrauss),
and a linear probe of the projection is still a linear probe of the layer, restricted to a random
256-dim subspace, so its accuracy is a lower bound of the full layer's. This keeps a 6,272-value
layer's probes to seconds. The logistic regression is scikit-learn's (L-BFGS, multinomial) on
standardised features.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

MAX_DIMS = 256
K = 10
METHOD = "float32 projection, streamed"   # in the probes' cache key: a change here recomputes them


def projection(d: int, max_dims: int = MAX_DIMS, seed: int = 0) -> np.ndarray:
    """The fixed (d, max_dims) Gaussian projection of a layer of d values (seed 0 for every run)."""
    scale = np.float32(1 / np.sqrt(max_dims))
    return np.random.default_rng(seed).standard_normal((d, max_dims), dtype=np.float32) * scale


def reduce(train: np.ndarray, test: np.ndarray, max_dims: int = MAX_DIMS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float32 features, projected to `max_dims` where wider."""
    train = np.asarray(train, np.float32).reshape(len(train), -1)
    test = np.asarray(test, np.float32).reshape(len(test), -1)
    d = train.shape[1]
    if d <= max_dims:
        return train, test
    proj = torch.from_numpy(projection(d, max_dims, seed))
    return (torch.from_numpy(train) @ proj).numpy(), (torch.from_numpy(test) @ proj).numpy()


def reduced_features(model: torch.nn.Module, images: np.ndarray, layers: list[str], max_dims: int = MAX_DIMS,
                     batch_size: int = 1000) -> dict[str, np.ndarray]:
    """{layer: float32 (N, min(values, max_dims))}: each layer flattened (C, H, W) and projected as
    `reduce` does, batch by batch as the network computes it, so a wide layer is never held whole."""
    from .features import batches, rows
    out: dict[str, np.ndarray] = {}
    proj: dict[str, torch.Tensor | None] = {}
    for start, got in batches(model, images, layers, batch_size):
        for name, t in got.items():
            if name not in proj:
                d = int(np.prod(t.shape[1:]))
                p = torch.from_numpy(projection(d, max_dims)) if d > max_dims else None
                if p is not None:
                    # rows() flattens in memory order ((H, W, C) for channels-last): order P's rows alike.
                    index = torch.empty_like(t[:1], dtype=torch.float64).copy_(
                        torch.arange(d, dtype=torch.float64).reshape(t[:1].shape))
                    p = p[rows(index)[0].long()]
                proj[name] = p
                out[name] = np.empty((len(images), min(d, max_dims)), np.float32)
            x = rows(t).float()
            out[name][start:start + len(t)] = (x @ proj[name] if proj[name] is not None else x).numpy()
    return out


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 k: int = K, chunk: int = 2000) -> float:
    """Accuracy of a cosine k-nearest-neighbour vote (ties go to the larger summed similarity)."""
    def unit(a):
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
    tr, te = unit(train_x), unit(test_x)
    ytr = torch.from_numpy(np.asarray(train_y, np.int64))
    k = min(k, len(tr))
    n_classes = int(max(ytr.max().item(), int(np.max(test_y))) + 1)
    correct = 0
    for s in range(0, len(te), chunk):
        sims, idx = (te[s:s + chunk] @ tr.T).topk(k, dim=1)
        votes = torch.zeros(len(idx), n_classes).scatter_add_(1, ytr[idx], 1.0 + 1e-3 * sims)
        correct += int((votes.argmax(1).numpy() == np.asarray(test_y[s:s + chunk])).sum())
    return correct / len(te)


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                          max_iter: int = 200, seed: int = 0) -> float:
    """Test accuracy of a logistic regression fitted on the training features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    # One BLAS thread: the fit's small products lose more to the two thread pools (numpy's BLAS and
    # torch's OpenMP, both spinning between calls) fighting over the cores than they gain, and the
    # result no longer depends on how many cores the machine has.
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.asarray(train_x, np.float32), np.asarray(train_y))
        return float((model.predict(np.asarray(test_x, np.float32)) == np.asarray(test_y)).mean())


def probe_layer(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                max_dims: int = MAX_DIMS) -> dict[str, float]:
    """{"knn_accuracy", "linear_probe_accuracy"} of one layer."""
    tr, te = reduce(train_x, test_x, max_dims)
    return {"knn_accuracy": knn_accuracy(tr, train_y, te, test_y),
            "linear_probe_accuracy": linear_probe_accuracy(tr, train_y, te, test_y)}
