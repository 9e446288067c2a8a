"""Test-set evaluation: accuracy, loss, reconstruction MSE, row-normalized confusion matrices."""
from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix

from .data import FashionMNIST, scale
from .runs import RunStore
from .store import CheckpointError, cached_arrays


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images_u8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits (N, 10) for uint8 images (N, 28, 28), in eval mode, batched."""
    model.eval()
    device = next(model.parameters()).device
    pixel_range = model.spec.input_range
    out = [model(scale(images_u8[i:i + batch_size].to(device), pixel_range)).float().cpu()
           for i in range(0, len(images_u8), batch_size)]
    return torch.cat(out)


@torch.inference_mode()
def reconstruct(autoencoder: torch.nn.Module, images_u8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Reconstructions (N, 1, 28, 28) of uint8 images (N, 28, 28), on the model's output scale."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    pixel_range = autoencoder.spec.input_range
    return torch.cat([autoencoder(scale(images_u8[i:i + batch_size].to(device), pixel_range)).cpu()
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
    return {"test_mse": float(F.mse_loss(rec, scale(images_u8.cpu(), model.spec.target_range)))}


def evaluate_runs(store: RunStore, runs: dict[str, str], data: FashionMNIST, which: str = "last",
                  device: torch.device | str = "cpu") -> dict[str, dict]:
    """Evaluate runs ({label: run id}) on the official test set; a run that cannot load gets `error`.

    Runs with a subset were trained on fewer images but are scored on the whole test set here.
    """
    results: dict[str, dict] = {}
    for label, run_id in runs.items():
        try:
            model = store.load_model(run_id, which, device)
        except CheckpointError as e:
            results[label] = {"error": str(e)}
            continue
        if model.kind == "autoencoder":
            results[label] = {"run": run_id, **autoencoder_report(model, data.test_images)}
        else:
            results[label] = {"run": run_id, **classifier_report(model, data.test_images, data.test_labels)}
    return results


def weights_digest(store: RunStore, run_id: str, which: str = "last") -> str:
    """The sha256 of a run's `which` weights file, from its manifest."""
    m = store.require(run_id)
    if which not in m["roles"]:
        raise CheckpointError(f"{run_id} has no {which!r} weights")
    return m["files"][m["roles"][which]]


def cached_predictions(store: RunStore, run_id: str, images_u8: np.ndarray, which: str = "last",
                       model: torch.nn.Module | None = None) -> np.ndarray:
    """Predicted class indices (N,) of one classifier run, computed once per weights and images.

    The result is kept as an npz (no pickles) in the store's cache folder, so the app's confusion page
    does not classify the 10,000 test images again in every new server (about 5 s a model on one
    thread). `model`: the run's `which` model where the caller has it loaded already.
    """
    n = len(images_u8)
    h = hashlib.sha256(np.ascontiguousarray(images_u8).tobytes())
    h.update(weights_digest(store, run_id, which).encode())

    def predict() -> dict[str, np.ndarray]:
        images = torch.from_numpy(np.ascontiguousarray(images_u8))
        m = model if model is not None else store.load_model(run_id, which)
        return {"pred": predict_logits(m, images).argmax(1).numpy().astype(np.uint8)}

    arrays = cached_arrays(store.cache_path(f"predictions-{h.hexdigest()[:16]}.npz"), predict,
                           lambda a: "pred" in a and a["pred"].shape == (n,))
    return arrays["pred"].astype(np.int64)
