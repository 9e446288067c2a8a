"""The convolutional autoencoder and the classifier that reuses its encoder.

Shapes (reference protocol): image (N, 1, 28, 28) -> latent (N, 64, 7, 7) -> image.
Classifier: encoder -> flatten 3136 -> 128 -> 10 logits, 458,570 parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig, scheme


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2, c3 = cfg.channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(cfg.dropout),   # 28 -> 14
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(cfg.dropout),  # 14 -> 7
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),                                            # latent
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2, c3 = cfg.channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 14 -> 28
            nn.Conv2d(c1, 1, 3, padding=1), nn.Tanh(),                                          # [-1, 1]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Autoencoder(nn.Module):
    kind = "autoencoder"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Classifier(nn.Module):
    kind = "classifier"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.num_classes),
        )
        self.frozen_encoder = False

    def freeze_encoder(self) -> None:
        """Stop training the encoder: no gradients, and its forward runs without autograd."""
        self.frozen_encoder = True
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen_encoder and torch.is_grad_enabled():
            # Dropout inside the encoder still acts in train mode, as in the reference; only the
            # backward pass through it is skipped (nothing there is trained).
            with torch.no_grad():
                z = self.encoder(x)
        else:
            z = self.encoder(x)
        return self.head(z)


def build(kind: str, cfg: ModelConfig) -> nn.Module:
    if kind == "autoencoder":
        return Autoencoder(cfg)
    if kind == "classifier":
        return Classifier(cfg)
    raise ValueError(f"unknown model kind {kind!r}")


def make_classifier(name: str, cfg: ModelConfig, pretrained_encoder: dict | None) -> Classifier:
    """Set up one of the four schemes. `pretrained_encoder` is the autoencoder's encoder state."""
    from_pretrained, frozen = scheme(name)
    model = Classifier(cfg)
    if from_pretrained:
        if pretrained_encoder is None:
            raise ValueError(f"{name} needs the trained autoencoder's encoder; train the autoencoder first")
        model.encoder.load_state_dict(pretrained_encoder)
    if frozen:
        model.freeze_encoder()
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
