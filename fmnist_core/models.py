"""The convolutional autoencoder and the classifier that reuses its encoder.

Shapes (reference protocol): image (N, 1, 28, 28) -> latent (N, 64, 7, 7) -> image.
Classifier: encoder -> flatten 3136 -> 128 -> 10 logits, 458,570 parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from . import kernels
from .config import ModelConfig, scheme

# Dropout keeps an element when a uniform 16-bit integer is >= this fraction of 2^16 (see Dropout).
_LANES_PER_WORD = 3        # of the four 16-bit lanes in an int64 draw; the top one has only 15 random bits


def cpu_dropout_keep_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Scaled keep-mask (0 or 1/(1-p)) with the shape, strides and dtype of `like`, drawn on the CPU.

    Each element gets 16 uniform bits from torch's CPU generator (three per int64 draw), so seeding
    with torch.manual_seed makes it repeatable; an element is dropped with probability
    round(p * 2^16) / 2^16 (p = 0.2 -> 0.199997).
    """
    n = like.numel()
    words = torch.empty(-(-n // _LANES_PER_WORD), dtype=torch.int64).random_()     # [0, 2^63)
    lanes = words.view(torch.int16).view(-1, 4)[:, :_LANES_PER_WORD].reshape(-1)[:n]  # uniform int16
    threshold = round(p * 65536) - 32768                                             # on the signed scale
    mask = (lanes >= threshold).to(like.dtype).mul_(1.0 / (1.0 - p))
    # Laid out like `like` (channels-last here): the draws are i.i.d., so only the layout matters.
    return mask.as_strided(like.shape, like.stride()) if kernels.is_dense(like) else mask.view(like.shape)


class Dropout(nn.Dropout):
    """nn.Dropout, faster on the CPU.

    PyTorch draws CPU dropout masks as double-precision Bernoulli samples (on AMD CPUs one at a
    time on one thread), then multiplies and keeps a float mask: at batch 100 that costs more than
    the convolutions around it. Where the fused kernel builds (`kernels.dropout`) the mask is drawn,
    applied and kept as bytes in one pass; otherwise `cpu_dropout_keep_mask` draws 16-bit integers,
    three per random word. Same distribution (to 1/65536), same module and state dict; CUDA and
    eval are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p in (0, 1) or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        if kernels.dropout_supported(x):
            return kernels.dropout(x, self.p)
        if not kernels.is_dense(x):
            x = x.contiguous()
        return x * cpu_dropout_keep_mask(x, self.p)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2, c3 = cfg.channels
        # The reference's Conv -> ReLU -> MaxPool, computed as Conv -> MaxPool -> ReLU: the two commute
        # (ReLU is monotone; the gradient reaches the same element), and the ReLU then touches a quarter
        # of the values. Parameter names are unchanged (net.0, net.4, net.8); tests/test_models checks it.
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(), Dropout(cfg.dropout),   # 28 -> 14
            nn.Conv2d(c1, c2, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(), Dropout(cfg.dropout),  # 14 -> 7
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),                                            # latent
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.net[0]
        if conv.bias is not None and kernels.first_block_supported(x, conv.weight):
            # net[0:3] (conv, pool, ReLU) in one fused CPU pass: the same function (see kernels.py).
            return self.net[3:](kernels.first_block(x, conv.weight, conv.bias))
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
            nn.Linear(cfg.latent_dim, cfg.hidden), nn.ReLU(), Dropout(cfg.dropout),
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
