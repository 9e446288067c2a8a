"""Batched inference with the stored models: probabilities, reconstructions, latent codes.

A Predictor holds models in eval mode and runs them under `torch.inference_mode`; it keeps no
mutable state, so one instance serves many app sessions at once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import CLASS_NAMES, PIXEL_MEAN, PIXEL_STD
from .preprocess import ImageInputError, Preprocessed, preprocess_bytes
from .runs import RunStore


def to_model_input(images: np.ndarray, pixel_range: str = "signed") -> torch.Tensor:
    """(N, 28, 28) or (28, 28) in [0, 1] (float) or 0..255 (uint8) -> (N, 1, 28, 28) in the range
    a model takes: [-1, 1] ("signed") or [0, 1] ("unit")."""
    x = torch.as_tensor(np.asarray(images))
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    if x.ndim == 2:
        x = x[None]
    if x.shape[-2:] != (28, 28):
        raise ValueError(f"expected 28x28 images, got shape {tuple(x.shape)}")
    x = x.unsqueeze(1)
    return (x - PIXEL_MEAN) / PIXEL_STD if pixel_range == "signed" else x


def output_to_unit(model: torch.nn.Module, out: torch.Tensor) -> torch.Tensor:
    """An autoencoder's output on [0, 1] for display: Tanh's [-1, 1] mapped, Sigmoid's as it is."""
    spec = model.spec
    signed = spec.decoder.output == "tanh" or (spec.decoder.output == "none" and spec.target_range == "signed")
    return (out * PIXEL_STD + PIXEL_MEAN).clamp(0, 1) if signed else out.clamp(0, 1)


def model_input(model: torch.nn.Module, images: np.ndarray) -> torch.Tensor:
    """`to_model_input` in the model's own pixel range, on its device."""
    return to_model_input(images, model.spec.input_range).to(next(model.parameters()).device)


class Predictor:
    def __init__(self, classifiers: dict[str, torch.nn.Module], autoencoder: torch.nn.Module | None = None):
        self.classifiers = {name: m.eval() for name, m in classifiers.items()}
        self.autoencoder = autoencoder.eval() if autoencoder is not None else None

    @classmethod
    def from_runs(cls, store: RunStore, classifiers: dict[str, str], autoencoder: str | None = None,
                  which: str = "last", device: str = "cpu", with_autoencoder: bool = True) -> "Predictor":
        """Classifier runs ({label: run id}) and, optionally, an autoencoder run."""
        models = {label: store.load_model(rid, which, device) for label, rid in classifiers.items()}
        ae = store.load_model(autoencoder, which, device) if with_autoencoder and autoencoder else None
        return cls(models, ae)

    @classmethod
    def from_store(cls, store: RunStore, which: str = "last", device: str = "cpu",
                   with_autoencoder: bool = True) -> "Predictor":
        """The reference protocol's four classifiers (labelled by scheme) and its autoencoder."""
        from .presets import reference_runs
        ids = reference_runs(store)
        ae = ids.pop("autoencoder")
        return cls.from_runs(store, ids, ae, which, device, with_autoencoder)

    @torch.inference_mode()
    def predict_proba(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Class probabilities (N, 10) from each classifier."""
        return {name: torch.softmax(m(model_input(m, images)), 1).cpu().numpy()
                for name, m in self.classifiers.items()}

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {name: p.argmax(1) for name, p in self.predict_proba(images).items()}

    @torch.inference_mode()
    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """Autoencoder reconstructions (N, 28, 28) in [0, 1]."""
        if self.autoencoder is None:
            raise ValueError("this predictor was built without the autoencoder")
        out = self.autoencoder(model_input(self.autoencoder, images))
        return output_to_unit(self.autoencoder, out)[:, 0].cpu().numpy()

    def classify(self, pre: Preprocessed) -> dict[str, dict]:
        """Predictions of all classifiers for one preprocessed input, in the CLI's JSON shape."""
        probs = self.predict_proba(pre.input[None])
        return {name: {"label": CLASS_NAMES[int(p[0].argmax())], "index": int(p[0].argmax()),
                       "probabilities": [round(float(v), 6) for v in p[0]]}
                for name, p in probs.items()}

    def classify_bytes(self, data: bytes, name: str = "the file") -> dict:
        """{"ok": True, "predictions": ...} or {"ok": False, "error": message}; never raises on bad input."""
        try:
            pre = preprocess_bytes(data, name)
        except ImageInputError as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True, "predictions": self.classify(pre)}

    def classify_file(self, path: str | Path) -> dict:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            return {"file": str(path), "ok": False, "error": f"cannot read {path}: {e.strerror or e}"}
        return {"file": str(path), **self.classify_bytes(data, path.name)}
