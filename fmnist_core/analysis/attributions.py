"""Which pixels drove a classifier's answer: saliency, integrated gradients and Grad-CAM, with captum.

Each method gives a (28, 28) map for the class the model predicts (or a chosen one), scaled to [0, 1]
by its largest absolute value. Grad-CAM is taken at the last encoder block and upsampled to 28x28.

A sanity check (Adebayo et al., 2018, "Sanity checks for saliency maps"): a method that explains the
model should change when the model's weights do. `frozen_random`'s encoder is random and never
trained, so its saliency and integrated gradients show the edges of the input much as any network's
would (they track the image more than the model), while its Grad-CAM spreads over the garment without
picking out the parts a trained encoder uses.
"""
from __future__ import annotations

import numpy as np
import torch

from ..inference import model_input
from .features import RepresentationError, layer_modules

METHODS = ("saliency", "integrated gradients", "Grad-CAM")
SANITY_NOTE = (
    "Sanity check (Adebayo et al., 2018): `frozen_random`'s encoder was never trained. Saliency and "
    "integrated gradients that look much the same for it as for the trained runs follow the image's edges, "
    "not what the network learned; Grad-CAM, computed on the last block's channels, differs more. A map "
    "explains a model only as far as it changes when the model does.")


def _captum():
    try:
        import captum.attr as attr
    except ImportError as e:
        raise RepresentationError(f"attributions need captum ({e}); install it with "
                                  "`pip install -r requirements.txt`") from None
    return attr


class _Whole(torch.nn.Module):
    """The classifier as one function of its input, through the plain layers (no fused kernel)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.head(self.model.encoder.net(x))


def attributions(model: torch.nn.Module, image: np.ndarray, target: int | None = None,
                 methods: tuple[str, ...] = METHODS) -> dict:
    """{"target": class, "maps": {method: (28, 28) float32 in [-1, 1]}} for one image (28, 28)."""
    if model.kind != "classifier":
        raise RepresentationError("attributions are for classifier runs; an autoencoder has no class to explain")
    attr = _captum()
    whole = _Whole(model).eval()
    x = model_input(model, np.asarray(image)[None]).clone().requires_grad_(True)
    with torch.no_grad():
        target = int(whole(x).argmax(1)) if target is None else int(target)
    out = {}
    for method in methods:
        if method == "saliency":
            a = attr.Saliency(whole).attribute(x, target=target, abs=True)
        elif method == "integrated gradients":
            a = attr.IntegratedGradients(whole).attribute(x, baselines=model_input(model, np.zeros((1, 28, 28), np.uint8)),
                                                          target=target, n_steps=32)
        elif method == "Grad-CAM":
            block_end = [m for name, m in layer_modules(model) if name.startswith("block")][-1]
            cam = attr.LayerGradCam(whole, block_end).attribute(x, target=target)
            a = attr.LayerAttribution.interpolate(torch.relu(cam), (28, 28), interpolate_mode="bilinear")
        else:
            raise RepresentationError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")
        m = a.detach()[0, 0].numpy().astype(np.float32)
        scale = np.abs(m).max()
        out[method] = m / scale if scale > 0 else m
    return {"target": target, "maps": out}
