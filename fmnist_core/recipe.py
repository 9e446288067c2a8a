"""The training recipe's pieces: batched augmentation on the device and the learning-rate schedule.

No per-sample Python: a batch of uint8 images (B, 28, 28) is shifted and flipped with one gather.
Every draw comes from a generator seeded per epoch, so runs stay repeatable and resume exactly.
"""
from __future__ import annotations

import math

import torch

from .spec import RecipeSpec


def augments(recipe: RecipeSpec | None) -> bool:
    return recipe is not None and (recipe.translate > 0 or recipe.hflip)


def augment(images_u8: torch.Tensor, recipe: RecipeSpec, generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, H, W) -> uint8 (B, H, W): each image shifted by up to ±translate px (the border
    filled with background 0) and flipped left-right with p = 0.5, as the recipe says.

    `generator` is a CPU generator; the draws are moved to the images' device.
    """
    b, h, w = images_u8.shape
    dev = images_u8.device
    t = recipe.translate
    rows = torch.arange(h, device=dev).expand(b, h)
    cols = torch.arange(w, device=dev).expand(b, w)
    if t:
        shift = torch.randint(0, 2 * t + 1, (2, b, 1), generator=generator).to(dev)
        rows, cols = rows + shift[0], cols + shift[1]             # indices into the padded images
        images_u8 = torch.nn.functional.pad(images_u8, (t, t, t, t))
    if recipe.hflip:
        flip = (torch.rand((b, 1), generator=generator) < 0.5).to(dev)
        cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=dev)[:, None, None]
    return images_u8[batch, rows[:, :, None], cols[:, None, :]]


def lr_factor(recipe: RecipeSpec | None, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The multiple of the spec's lr for optimizer step `step` (0-based) of `total_steps`."""
    if recipe is None or recipe.schedule == "constant":
        return 1.0
    if recipe.schedule == "onecycle":
        # torch's OneCycleLR shape: cosine up from lr/25 over 30% of the steps, then cosine down to ~0.
        up = max(1, int(0.3 * total_steps))
        if step < up:
            return 1 / 25 + (1 - 1 / 25) * (1 - math.cos(math.pi * step / up)) / 2
        return (1 + math.cos(math.pi * (step - up) / max(1, total_steps - up))) / 2
    warm = int(recipe.warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    return (1 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm))) / 2
