"""Test-set evaluation: accuracy, loss, reconstruction MSE, row-normalized confusion matrices."""
from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix

from .config import AUTOENCODER, CLASSIFIERS
from .data import FashionMNIST, scale
from .store import CheckpointError, CheckpointStore, cached_arrays


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images_u8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits (N, 10) for uint8 images (N, 28, 28), in eval mode, batched."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(scale(images_u8[i:i + batch_size].to(device))).float().cpu()
           for i in range(0, len(images_u8), batch_size)]
    return torch.cat(out)


@torch.inference_mode()
def reconstruct(autoencoder: torch.nn.Module, images_u8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Reconstructions (N, 1, 28, 28) in [-1, 1] of uint8 images (N, 28, 28)."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    return torch.cat([autoencoder(scale(images_u8[i:i + batch_size].to(device))).cpu()
                      for i in range(0, len(images_u8), batch_size)])


def normalized_confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Confusion matrix normalized by true class: row i is P(predicted | true = i), rows sum to 1."""
    return confusion_matrix(y_true, y_pred, labels=list(range(num_classes)), normalize="true")


def most_confused_pairs(confusion: np.ndarray, top: int = 5) -> list[tuple[int, int, float]]:
    """Off-diagonal cells, largest first: (true class, predicted class, share of the true class)."""
    off = confusion.copy()
    np.fill_diagonal(off, 0.0)
    order = np.argsort(off, axis=None)[::-1][:top]
    return [(int(i // off.shape[1]), int(i % off.shape[1]), float(off.flat[i])) for i in order]


def classifier_report(model: torch.nn.Module, images_u8: torch.Tensor, labels: torch.Tensor) -> dict:
    logits = predict_logits(model, images_u8)
    labels = labels.cpu()
    pred = logits.argmax(1)
    return {
        "test_accuracy": float((pred == labels).float().mean()),
        "test_loss": float(F.cross_entropy(logits, labels)),
        "confusion": normalized_confusion(labels.numpy(), pred.numpy()).tolist(),
    }


def autoencoder_report(model: torch.nn.Module, images_u8: torch.Tensor) -> dict:
    rec = reconstruct(model, images_u8)
    return {"test_mse": float(F.mse_loss(rec, scale(images_u8.cpu())))}


def evaluate_store(store: CheckpointStore, data: FashionMNIST, which: str = "last",
                   device: torch.device | str = "cpu") -> dict[str, dict]:
    """Evaluate every stored model on the official test set; a model that cannot load gets `error`."""
    results: dict[str, dict] = {}
    for name in (AUTOENCODER,) + CLASSIFIERS:
        try:
            model = store.load_model(name, which, device)
        except CheckpointError as e:
            results[name] = {"error": str(e)}
            continue
        if name == AUTOENCODER:
            results[name] = autoencoder_report(model, data.test_images)
        else:
            results[name] = classifier_report(model, data.test_images, data.test_labels)
    return results


def _predictions_path(store: CheckpointStore, images_u8: np.ndarray, which: str):
    """Cache file named by the four classifiers' weights (sha256) and the images."""
    h = hashlib.sha256(np.ascontiguousarray(images_u8).tobytes())
    for name in CLASSIFIERS:
        m = store.manifest(name)
        if m is None or which not in m["roles"]:
            raise CheckpointError(f"no {which} checkpoint of {name} in {store.root}")
        h.update(m["files"][m["roles"][which]].encode())
    return store.root / "cache" / f"predictions-{which}-{h.hexdigest()[:12]}.npz"


def cached_predictions(store: CheckpointStore, images_u8: np.ndarray, which: str = "last",
                       classifiers: dict[str, torch.nn.Module] | None = None) -> dict[str, np.ndarray]:
    """Predicted class indices (N,) of each classifier, computed once per set of weights.

    The result is kept as an npz (no pickles) in the store's cache folder, so the app's confusion page
    does not classify the 10,000 test images again in every new server (about 20 s on one thread).
    `classifiers`: the store's `which` models where the caller has them loaded already.
    """
    n = len(images_u8)

    def predict() -> dict[str, np.ndarray]:
        images = torch.from_numpy(np.ascontiguousarray(images_u8))
        models = classifiers or {name: store.load_model(name, which) for name in CLASSIFIERS}
        return {name: predict_logits(models[name], images).argmax(1).numpy().astype(np.uint8)
                for name in CLASSIFIERS}

    arrays = cached_arrays(_predictions_path(store, images_u8, which), predict,
                           lambda a: all(name in a and a[name].shape == (n,) for name in CLASSIFIERS))
    return {name: arrays[name].astype(np.int64) for name in CLASSIFIERS}
