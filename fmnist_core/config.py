"""Configuration dataclasses, class names and model names.

Every checkpoint stores the config it was trained with; `ModelConfig.from_dict` rebuilds the
architecture from it, so loading a model needs nothing but its manifest.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

AUTOENCODER = "autoencoder"
# The four transfer schemes, in the order the reference report lists them.
CLASSIFIERS = ("scratch", "finetune", "frozen_random", "frozen_pretrained")
MODEL_NAMES = (AUTOENCODER,) + CLASSIFIERS

SCHEME_DESCRIPTIONS = {
    "scratch": "random encoder, every layer trained",
    "finetune": "encoder initialised from the autoencoder, every layer trained",
    "frozen_random": "random encoder kept frozen, only the head trained",
    "frozen_pretrained": "autoencoder's encoder kept frozen, only the head trained",
}

# Published results for the reference protocol (2026 report, Table I, after 50 epochs):
# train loss, validation loss, train accuracy, validation accuracy, accuracy gap in points.
REFERENCE_RESULTS = {
    "finetune": {"train_loss": 0.0172, "val_loss": 0.3154, "train_acc": 0.9955, "val_acc": 0.9276, "gap_pts": 6.79},
    "scratch": {"train_loss": 0.0248, "val_loss": 0.3067, "train_acc": 0.9922, "val_acc": 0.9260, "gap_pts": 6.62},
    "frozen_pretrained": {"train_loss": 0.1502, "val_loss": 0.2913, "train_acc": 0.9420, "val_acc": 0.9041, "gap_pts": 3.79},
    "frozen_random": {"train_loss": 0.3752, "val_loss": 0.4125, "train_acc": 0.8575, "val_acc": 0.8469, "gap_pts": 1.06},
}

# Images are scaled as (x/255 - MEAN) / STD, i.e. to [-1, 1].
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the encoder, decoder and classifier head (the reference protocol)."""
    channels: tuple[int, int, int] = (32, 64, 64)   # encoder conv widths; latent = channels[2] x 7 x 7
    dropout: float = 0.2
    hidden: int = 128                               # classifier hidden units
    num_classes: int = 10

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.channels[2], 7, 7)

    @property
    def latent_dim(self) -> int:
        c, h, w = self.latent_shape
        return c * h * w

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters and data split. Defaults follow the reference protocol."""
    epochs: int = 50
    batch_size: int = 100
    lr: float = 1e-3
    val_size: int = 10_000          # held out from the 60,000 training images
    subset: int | None = None       # train on the first N training images only (quick runs)
    seed: int = 0
    eval_batch_size: int = 1000     # evaluation only; does not change results
    keep_epochs: tuple[int, ...] = (1, 2, 5, 10, 20, 50)  # autoencoder snapshots kept for the app

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["keep_epochs"] = tuple(d.get("keep_epochs", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def scheme(name: str) -> tuple[bool, bool]:
    """(starts from the pretrained encoder, encoder frozen) for a classifier name."""
    table = {
        "scratch": (False, False),
        "finetune": (True, False),
        "frozen_random": (False, True),
        "frozen_pretrained": (True, True),
    }
    if name not in table:
        raise ValueError(f"unknown classifier {name!r}; expected one of {', '.join(CLASSIFIERS)}")
    return table[name]
