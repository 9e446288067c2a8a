"""Named layers of a run's network and their activations, taken with forward hooks.

The layers of a spec, in order (for the reference classifier: pixels, block1, block2, block3,
hidden1, logits):

- `pixels`: the input image itself (a pseudo-layer, the control every other layer is read against);
- `block1` ... `blockK`: each encoder block's output (after its ReLU and pooling);
- `bottleneck`: the encoder's linear bottleneck, where the spec has one;
- classifiers: `hidden1` ... (the head's hidden layers, after their ReLU), then `logits`;
- autoencoders: `decoder_linear` (the bottleneck's way back, where there is one), `decoder1` ...
  (each transposed convolution after its ReLU), then `output` (the reconstruction).

A layer is hooked at the last module of its group in eval mode, so a dropout at a block's end is
the identity and the hooked tensor is the block's output. Where the encoder's fused CPU kernel computes the first
block (its modules then do not run), the block's output is taken as the next module's input.
"""
from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..inference import model_input

PIXELS = "pixels"
MAX_BYTES_ENV = "FMNIST_FEATURES_MAX_BYTES"


class RepresentationError(ValueError):
    """Bad input for a representation analysis (unknown layer, run without weights, other data,
    features too large): the message names what was wrong and what to do."""


def _groups(modules: list[nn.Module], starts: tuple[type, ...]) -> list[list[int]]:
    """Indices of `modules` cut into groups, a new group at each module of a `starts` type."""
    groups: list[list[int]] = []
    for i, m in enumerate(modules):
        if isinstance(m, starts) or not groups:
            groups.append([])
        groups[-1].append(i)
    return groups


def _layer_groups(model: nn.Module) -> list[tuple[str, str, list[int]]]:
    """(layer name, the Sequential's attribute path, indices of its modules), in forward order."""
    out: list[tuple[str, str, list[int]]] = []
    block = 0
    for g in _groups(list(model.encoder.net), (nn.Conv2d, nn.Flatten)):
        if isinstance(model.encoder.net[g[0]], nn.Flatten):
            out.append(("bottleneck", "encoder.net", g))
        else:
            block += 1
            out.append((f"block{block}", "encoder.net", g))
    if model.kind == "classifier":
        head = list(model.head)
        linears = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)]
        for k, start in enumerate(linears[:-1]):
            out.append((f"hidden{k + 1}", "head", list(range(0 if k == 0 else start, linears[k + 1]))))
        out.append(("logits", "head", list(range(linears[-1], len(head)))))
    else:
        dec = list(model.decoder.net)
        groups = _groups(dec, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
        n = 0
        for k, g in enumerate(groups):
            if isinstance(dec[g[0]], nn.Linear):
                out.append(("decoder_linear", "decoder.net", g))
            elif k == len(groups) - 1:
                out.append(("output", "decoder.net", g))
            else:
                n += 1
                out.append((f"decoder{n}", "decoder.net", g))
    return out


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(layer name, the module whose output is that layer), in forward order; no `pixels`."""
    return [(name, model.get_submodule(path)[idx[-1]]) for name, path, idx in _layer_groups(model)]


def layer_parameters(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """{layer: {parameter name as in the state dict: tensor}} of the modules that compute each layer."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, path, idx in _layer_groups(model):
        seq = model.get_submodule(path)
        out[name] = {f"{path}.{i}.{p}": t for i in idx for p, t in seq[i].named_parameters()}
    return out


def layer_names(model: nn.Module) -> list[str]:
    """Every layer of the network, `pixels` first."""
    return [PIXELS] + [name for name, _ in layer_modules(model)]


@torch.inference_mode()
def layer_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """{layer: shape per image} for a 28x28 input."""
    one = extract(model, np.zeros((1, 28, 28), np.uint8))
    return {k: v.shape[1:] for k, v in one.items()}


def check_layers(model: nn.Module, layers: list[str] | None, run: str = "the run") -> list[str]:
    """The layers asked for, in the network's order; RepresentationError naming an unknown one."""
    names = layer_names(model)
    if not layers:
        return names
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise RepresentationError(f"{run} has no layer {unknown[0]!r}; its layers are {', '.join(names)}")
    return [name for name in names if name in layers]


def memory_budget() -> int:
    """Bytes the features of one call may take: $FMNIST_FEATURES_MAX_BYTES, else half the free memory."""
    if os.environ.get(MAX_BYTES_ENV):
        return int(float(os.environ[MAX_BYTES_ENV]))
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def check_memory(shapes: dict[str, tuple[int, ...]], n: int, run: str = "the run", budget: int | None = None) -> int:
    """Bytes of float32 features of `n` images; RepresentationError where they exceed the budget."""
    need = sum(4 * n * int(np.prod(s)) for s in shapes.values())
    budget = memory_budget() if budget is None else budget
    if need > budget:
        big = max(shapes, key=lambda k: int(np.prod(shapes[k])))
        raise RepresentationError(
            f"the features of {run} on {n:,} images need {need / 2**30:.1f} GiB, more than the "
            f"{budget / 2**30:.1f} GiB allowed (half the free memory, or ${MAX_BYTES_ENV}); choose fewer "
            f"layers (--layers; the largest is {big}, {int(np.prod(shapes[big])):,} values an image) or fewer images")
    return need


def rows(t: torch.Tensor) -> torch.Tensor:
    """A batch's activations as (N, values per image) without a copy where the layout allows: a
    channels-last tensor is flattened in its memory order (height, width, channel). Only for
    what ignores the order of the values (CKA, Grams); `extract` keeps (N, C, H, W)."""
    if t.ndim == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        t = t.permute(0, 2, 3, 1)
    return t.reshape(len(t), -1)


def batches(model: nn.Module, images: np.ndarray, layers: list[str] | None = None, batch_size: int = 500
            ) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(start, {layer: tensor of that batch}) per batch of `batch_size` images, the layers in the
    network's order, taken with forward hooks in inference mode. A tensor is valid until the next
    batch (the caller copies or reduces it); `pixels` is the image in the model's input range."""
    model.eval()
    wanted = check_layers(model, layers)
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for name, path, idx in _layer_groups(model):
        if name not in wanted:
            continue
        seq = model.get_submodule(path)
        hooks.append(seq[idx[-1]].register_forward_hook(
            lambda mod, inp, out, name=name: captured.__setitem__(name, out)))
        if path == "encoder.net" and idx[-1] < 3 and len(seq) > idx[-1] + 1:
            # The fused first block (Encoder.forward) skips net[0:3]; the next module's input is the same tensor.
            hooks.append(seq[idx[-1] + 1].register_forward_pre_hook(
                lambda mod, inp, name=name: captured.__setitem__(name, inp[0])))
    run_decoder_or_head = any(not name.startswith((PIXELS, "block", "bottleneck")) for name in wanted)
    try:
        for start in range(0, len(images), batch_size):
            with torch.inference_mode():
                x = model_input(model, images[start:start + batch_size])
                z = model.encoder(x)
                if len(model.encoder.net) <= 3:
                    captured.setdefault("block1", z)
                if run_decoder_or_head:
                    (model.head if model.kind == "classifier" else model.decoder.net)(z)
                got = {name: x if name == PIXELS else captured.pop(name) for name in wanted}
                captured.clear()
            yield start, got
    finally:
        for h in hooks:
            h.remove()


def extract(model: nn.Module, images: np.ndarray, layers: list[str] | None = None, batch_size: int = 500,
            progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """{layer: float32 (N, *shape)} of images (N, 28, 28) (uint8 or [0, 1]), batched, with hooks.

    `layers`: a subset of `layer_names(model)` (default all). `pixels` is the image in the model's
    input range. `progress(done, total)` is called after each batch.
    """
    n = len(images)
    out: dict[str, np.ndarray] = {}
    for start, got in batches(model, images, layers, batch_size):
        for name, t in got.items():
            if name not in out:
                out[name] = np.empty((n, *t.shape[1:]), np.float32)
            out[name][start:start + len(t)] = t.float().cpu().numpy()
        if progress is not None:
            progress(min(start + batch_size, n), n)
    return out if n else {name: np.zeros((0,)) for name in check_layers(model, layers)}


def flat(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each layer's features as (N, values per image)."""
    return {k: v.reshape(len(v), -1) for k, v in features.items()}


def untrained(spec, seed: int | None = None) -> nn.Module:
    """The network of `spec` with the initial weights its training started from (the spec's own
    seed by default): the control that says how much of a similarity is the architecture's alone.
    For `frozen_random` its encoder is the run's own."""
    from ..models import build
    torch.manual_seed(spec.seed + spec.init_seed_offset if seed is None else seed)
    return build(spec).eval()
