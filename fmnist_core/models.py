"""Networks built from a RunSpec: the encoder, the decoder, the autoencoder and the classifier.

Every architecture of the reference documents is one spec (see presets.py). Shapes of the reference
protocol: image (N, 1, 28, 28) -> latent (N, 64, 7, 7) -> image; classifier: encoder -> flatten 3136
-> 128 -> 10 logits, 458,570 parameters. The fused CPU kernels serve any first block of the form
Conv(1->C, 3x3, padding 1) + ReLU + MaxPool2 with C a multiple of 16; other shapes use PyTorch's layers.
"""
from __future__ import annotations

import torch
from torch import nn

from . import kernels
from .spec import RunSpec, SpecError, conv_output_shape, derived_decoder_layers, latent_shape

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
    """Conv blocks, then an optional linear bottleneck; `net` is one nn.Sequential.

    A block's Conv -> ReLU -> MaxPool is computed as Conv -> MaxPool -> ReLU: the two commute (ReLU
    is monotone; the gradient reaches the same element) and the ReLU then touches a quarter of the
    values. For the reference network this gives the parameter names net.0, net.4, net.8 of the
    shipped weights (tests/test_models checks the function against the reference layer order).
    """

    def __init__(self, spec: RunSpec):
        super().__init__()
        enc = spec.encoder
        layers: list[nn.Module] = []
        in_ch = 1
        for block in enc.blocks:
            layers.append(nn.Conv2d(in_ch, block.channels, block.kernel, padding=block.padding))
            pool = [nn.MaxPool2d(2, ceil_mode=block.pool_ceil)] if block.pool else []
            drop = [Dropout(enc.dropout)] if block.dropout else []
            if block.dropout_before_pool:
                layers += [nn.ReLU(), *drop, *pool]
            else:
                layers += [*pool, nn.ReLU(), *drop]
            in_ch = block.channels
        if enc.bottleneck is not None:
            c, h, w = conv_output_shape(spec)
            layers += [nn.Flatten(), nn.Linear(c * h * w, enc.bottleneck), nn.ReLU()]
            if enc.bottleneck_dropout:
                layers.append(Dropout(enc.dropout))
        self.net = nn.Sequential(*layers)
        first = enc.blocks[0]
        # net[0:3] is Conv(1->C, 3x3, pad 1), MaxPool2, ReLU: the fused kernel's function.
        self.fusable = (first.kernel == 3 and first.padding == 1 and first.pool and not first.pool_ceil
                        and not first.dropout_before_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.net[0]
        if self.fusable and conv.bias is not None and kernels.first_block_supported(x, conv.weight):
            return self.net[3:](kernels.first_block(x, conv.weight, conv.bias))
        return self.net(x)


_OUTPUT = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}


class Decoder(nn.Module):
    def __init__(self, spec: RunSpec):
        super().__init__()
        enc = spec.encoder
        c, h, w = conv_output_shape(spec)
        layers: list[nn.Module] = []
        if enc.bottleneck is not None:
            layers += [nn.Linear(enc.bottleneck, c * h * w), nn.ReLU()]
            if enc.bottleneck_dropout:
                layers.append(Dropout(enc.dropout))
            layers.append(nn.Unflatten(1, (c, h, w)))
        in_ch = c
        for layer in spec.decoder.layers if spec.decoder.layers is not None else derived_decoder_layers(spec):
            if layer.transposed:
                layers.append(nn.ConvTranspose2d(in_ch, layer.channels, layer.kernel, stride=layer.stride,
                                                 padding=layer.padding, output_padding=layer.output_padding))
            else:
                layers.append(nn.Conv2d(in_ch, layer.channels, layer.kernel, stride=layer.stride, padding=layer.padding))
            if layer.relu:
                layers.append(nn.ReLU())
            if layer.dropout:
                layers.append(Dropout(enc.dropout))
            in_ch = layer.channels
        layers.append(_OUTPUT[spec.decoder.output]())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Autoencoder(nn.Module):
    kind = "autoencoder"

    def __init__(self, spec: RunSpec):
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec)
        self.decoder = Decoder(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Classifier(nn.Module):
    kind = "classifier"

    def __init__(self, spec: RunSpec, num_classes: int = 10):
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec)
        width = 1
        for s in latent_shape(spec):
            width *= s
        layers: list[nn.Module] = [nn.Flatten()]
        for hidden in spec.head.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if spec.head.dropout:
                layers.append(Dropout(spec.encoder.dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        if spec.head.final_relu:
            layers.append(nn.ReLU())
        self.head = nn.Sequential(*layers)
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


def build(spec: RunSpec) -> nn.Module:
    """The network of a spec, with fresh weights, frozen where the spec says (no pretrained weights)."""
    if spec.kind == "autoencoder":
        return Autoencoder(spec)
    model = Classifier(spec)
    if spec.frozen:
        model.freeze_encoder()
    return model


def make_model(spec: RunSpec, pretrained_encoder: dict | None = None) -> nn.Module:
    """`build`, with the autoencoder's encoder state loaded where the spec starts from it."""
    model = build(spec)
    if spec.kind == "classifier" and spec.init == "pretrained":
        if pretrained_encoder is None:
            raise ValueError(f"{spec.name} starts from the encoder of {spec.pretrained_from}; train that first")
        try:
            model.encoder.load_state_dict(pretrained_encoder)
        except RuntimeError as e:
            raise SpecError(f"{spec.name}: the encoder of {spec.pretrained_from} does not fit this spec's "
                            f"encoder ({str(e).splitlines()[0]})") from None
    return model


def layer_shapes(spec: RunSpec) -> list[tuple[str, tuple[int, ...]]]:
    """(layer, output shape per image) through the network, for a 28x28 input, in order."""
    model = build(spec).eval()
    shapes: list[tuple[str, tuple[int, ...]]] = []
    parts = [model.encoder.net] + ([model.decoder.net] if spec.kind == "autoencoder" else [model.head])
    x = torch.zeros(1, 1, 28, 28)
    with torch.no_grad():
        for part in parts:
            for layer in part:
                x = layer(x)
                shapes.append((type(layer).__name__, tuple(x.shape[1:])))
    return shapes


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
