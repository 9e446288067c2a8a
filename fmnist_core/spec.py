"""Run specs: one frozen, serialisable description of everything that decides a run's result.

A `RunSpec` rebuilds its network (`models.build`) and fixes its training (`train.train_run`); the
manifest of every run holds it. A run's id is a readable name plus a short hash of the spec's
fields that differ from the defaults, so:

- the same spec always gets the same id (training it twice trains once);
- adding a field later, with a default that keeps today's behaviour, leaves every existing id as it
  is. The defaults are the 2026 report's reference protocol and never change.

Shapes below are (channels, height, width).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass, field

KINDS = ("autoencoder", "classifier")
OPTIMIZERS = ("adam", "adamw", "sgd")
OUTPUTS = ("tanh", "sigmoid", "none")
# Pixel ranges: "signed" is x/255 scaled to [-1, 1] (mean 0.5, std 0.5, the reference); "unit" is [0, 1].
RANGES = ("signed", "unit")
INITS = ("random", "pretrained")


class SpecError(ValueError):
    """A spec, a field path or a value is not valid; the message names it."""


@dataclass(frozen=True)
class ConvBlock:
    """Conv(k×k, padding) + ReLU, then optionally MaxPool2d(2) and Dropout, in the order given."""
    channels: int
    kernel: int = 3
    padding: int = 1
    pool: bool = True
    pool_ceil: bool = False            # ceil mode: 7 -> 4 instead of 3 (2025 architecture III)
    dropout: bool = True
    dropout_before_pool: bool = False  # the 2025 report's order: Conv, ReLU, Dropout, MaxPool


@dataclass(frozen=True)
class DecoderLayer:
    """One decoder layer: a transposed convolution (or a plain one) to `channels`, then ReLU and Dropout."""
    channels: int
    kernel: int = 3
    stride: int = 2
    padding: int = 1
    output_padding: int = 1
    transposed: bool = True
    relu: bool = True
    dropout: bool = False


REFERENCE_BLOCKS = (ConvBlock(32), ConvBlock(64), ConvBlock(64, pool=False, dropout=False))


@dataclass(frozen=True)
class EncoderSpec:
    blocks: tuple[ConvBlock, ...] = REFERENCE_BLOCKS
    dropout: float = 0.2               # p of every dropout layer of the network (encoder, decoder, head)
    bottleneck: int | None = None      # Flatten -> Linear(n) + ReLU (+ Dropout): an n-dimensional code
    bottleneck_dropout: bool = True


@dataclass(frozen=True)
class DecoderSpec:
    """None for `layers`: derived from the encoder (see derived_decoder_layers below)."""
    layers: tuple[DecoderLayer, ...] | None = None
    output: str = "tanh"               # the last activation: tanh, sigmoid or none


@dataclass(frozen=True)
class HeadSpec:
    """Classifier head on the flattened code: (Linear + ReLU + Dropout) per hidden size, Linear(10)."""
    hidden: tuple[int, ...] = (128,)
    dropout: bool = True
    final_relu: bool = False           # the 2024 report's Linear(n -> 10) + ReLU


@dataclass(frozen=True)
class OptimizerSpec:
    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0              # SGD only


SCHEDULES = ("constant", "cosine", "onecycle")
# Arithmetic of training and evaluation: float32, or bfloat16 autocast (CUDA, and CPUs with bf16 units).
PRECISIONS = ("fp32", "bf16")
SELECTIONS = ("last", "best")


@dataclass(frozen=True)
class RecipeSpec:
    """Training recipe beyond the reference protocol; every default is off (the reference recipe)."""
    translate: int = 0                 # random shift of each training image by up to ±N px (pad and crop)
    hflip: bool = False                # random horizontal flip of each training image, p = 0.5
    label_smoothing: float = 0.0       # classifiers' training loss only; reported losses stay plain
    schedule: str = "constant"         # learning rate per step: constant, cosine or onecycle
    warmup_epochs: float = 0.0         # linear warm-up from 0 (cosine); onecycle rises over 30% of training
    select: str = "last"               # which epoch's weights the run's results report: last or best (validation)
    # Drawn-style images (fmnist_core/drawn.py): each epoch this share of the training images is
    # replaced by drawings of themselves (silhouettes, outlines, a hand's rotation and wobble).
    drawn: float = 0.0
    drawn_outline: float = 0.3         # the share of those drawings that are outlines, not filled shapes
    drawn_rotate: float = 15.0         # their largest rotation, in degrees


@dataclass(frozen=True)
class RunSpec:
    kind: str = "autoencoder"
    name: str = "run"                  # readable label; part of the id, not of the hash
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    decoder: DecoderSpec = field(default_factory=DecoderSpec)   # autoencoders only
    head: HeadSpec = field(default_factory=HeadSpec)            # classifiers only
    input_range: str = "signed"
    target_range: str = "signed"       # what the autoencoder's output is scored against
    init: str = "random"               # classifiers: random, or pretrained from `pretrained_from`
    pretrained_from: str | None = None  # id of the autoencoder run whose (last) encoder starts it
    frozen: bool = False               # classifiers: train only the head
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    batch_size: int = 100
    epochs: int = 50
    seed: int = 0                      # batch order and dropout masks, per epoch; weight initialisation
    init_seed_offset: int = 0          # added to `seed` for the initial weights (reference: 1-4 per scheme)
    val_size: int = 10_000             # held out from the 60,000 training images
    split_seed: int = 0                # which images are held out: fixed, so seeds share a validation set
    subset: int | None = None          # train on the first N training images only (quick runs)
    recipe: RecipeSpec = field(default_factory=RecipeSpec)
    precision: str = "fp32"            # "bf16": autocast to bfloat16 (see fmnist_core/precision.py)

    # ---- dict form ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        spec = _build(cls, d, "")
        spec.validate()
        return spec

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    def with_overrides(self, overrides: dict[str, object]) -> "RunSpec":
        """A copy with dotted fields set, e.g. {"optimizer.lr": 1e-2, "encoder.bottleneck": 256}."""
        d = self.to_dict()
        for path, value in overrides.items():
            set_path(d, resolve_alias(path), value)
        return RunSpec.from_dict(d)

    # ---- identity ----------------------------------------------------------------------------
    def canonical(self) -> "RunSpec":
        """The spec with the parts its kind does not use reset to their defaults."""
        if self.kind == "autoencoder":
            return self.replace(head=HeadSpec(), init="random", pretrained_from=None, frozen=False)
        return self.replace(decoder=DecoderSpec(), target_range="signed")

    def differences(self, base: "RunSpec | None" = None) -> dict[str, object]:
        """Dotted fields whose values differ from `base` (default: the reference defaults)."""
        mine = flatten(self.canonical().to_dict())
        other = flatten((base or RunSpec(kind=self.kind)).canonical().to_dict())
        return {k: v for k, v in mine.items() if k != "name" and other.get(k, _MISSING) != v}

    @property
    def spec_hash(self) -> str:
        diff = self.differences(RunSpec())
        return hashlib.sha256(json.dumps(diff, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def run_id(self) -> str:
        return f"{self.name}-{self.spec_hash}"

    # ---- checks ------------------------------------------------------------------------------
    def validate(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise SpecError(what)
        need(self.kind in KINDS, f"kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        need(bool(self.name) and all(c.isalnum() or c in "-_." for c in self.name),
             f"name: {self.name!r} must be letters, digits, '-', '_' or '.'")
        need(self.decoder.output in OUTPUTS, f"decoder.output: {self.decoder.output!r} is not one of {', '.join(OUTPUTS)}")
        for f_ in ("input_range", "target_range"):
            need(getattr(self, f_) in RANGES, f"{f_}: {getattr(self, f_)!r} is not one of {', '.join(RANGES)}")
        need(self.init in INITS, f"init: {self.init!r} is not one of {', '.join(INITS)}")
        need(self.optimizer.name in OPTIMIZERS,
             f"optimizer.name: {self.optimizer.name!r} is not one of {', '.join(OPTIMIZERS)}")
        need(self.optimizer.lr > 0, f"optimizer.lr must be positive, got {self.optimizer.lr}")
        need(self.optimizer.weight_decay >= 0, "optimizer.weight_decay must be >= 0")
        need(0 <= self.optimizer.momentum < 1, "optimizer.momentum must be in [0, 1)")
        need(0 <= self.encoder.dropout < 1, f"encoder.dropout must be in [0, 1), got {self.encoder.dropout}")
        need(len(self.encoder.blocks) >= 1, "encoder.blocks: at least one block")
        for i, b in enumerate(self.encoder.blocks):
            need(b.channels >= 1 and b.kernel >= 1 and b.padding >= 0,
                 f"encoder.blocks[{i}]: channels and kernel must be >= 1, padding >= 0")
        need(self.encoder.bottleneck is None or self.encoder.bottleneck >= 1, "encoder.bottleneck must be >= 1")
        need(all(h >= 1 for h in self.head.hidden), "head.hidden: every size must be >= 1")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.val_size >= 1, f"val_size must be >= 1, got {self.val_size}")
        need(self.subset is None or self.subset >= 12, f"subset must be at least 12 images, got {self.subset}")
        need(self.precision in PRECISIONS, f"precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        r = self.recipe
        need(0 <= r.translate <= 8, f"recipe.translate must be 0..8 pixels, got {r.translate}")
        need(0 <= r.label_smoothing < 1, f"recipe.label_smoothing must be in [0, 1), got {r.label_smoothing}")
        need(r.schedule in SCHEDULES, f"recipe.schedule: {r.schedule!r} is not one of {', '.join(SCHEDULES)}")
        need(0 <= r.warmup_epochs <= self.epochs, f"recipe.warmup_epochs must be in [0, epochs], got {r.warmup_epochs}")
        need(r.select in SELECTIONS, f"recipe.select: {r.select!r} is not one of {', '.join(SELECTIONS)}")
        need(0 <= r.drawn <= 1, f"recipe.drawn must be a share in [0, 1], got {r.drawn}")
        need(0 <= r.drawn_outline <= 1, f"recipe.drawn_outline must be a share in [0, 1], got {r.drawn_outline}")
        need(0 <= r.drawn_rotate <= 45, f"recipe.drawn_rotate must be 0..45 degrees, got {r.drawn_rotate}")
        if self.kind == "classifier":
            need(self.init == "random" or self.pretrained_from is not None,
                 "init = 'pretrained' needs pretrained_from: the id of an autoencoder run")
        check_architecture(self)


# ---- layer arithmetic: PyTorch's size rules, so that a spec is checked without building its network

def conv_output_shape(spec: RunSpec) -> tuple[int, int, int]:
    """(C, H, W) after the encoder's conv blocks, for a 28x28 input; SpecError where a size vanishes."""
    h = w = 28
    c = 1
    for i, b in enumerate(spec.encoder.blocks):
        h, w = h + 2 * b.padding - b.kernel + 1, w + 2 * b.padding - b.kernel + 1
        if b.pool:
            h, w = (-(-h // 2), -(-w // 2)) if b.pool_ceil else (h // 2, w // 2)
        if h < 1 or w < 1:
            raise SpecError(f"encoder.blocks[{i}]: the image shrinks to {h}x{w}; use padding or fewer blocks")
        c = b.channels
    return c, h, w


def latent_shape(spec: RunSpec) -> tuple[int, ...]:
    """The code's shape per image: (C, H, W), or (n,) with a linear bottleneck."""
    return (spec.encoder.bottleneck,) if spec.encoder.bottleneck is not None else conv_output_shape(spec)


def derived_decoder_layers(spec: RunSpec) -> tuple[DecoderLayer, ...]:
    """The decoder the reference protocol uses, for any encoder: for each pooled block, last first, a
    stride-2 3x3 transposed convolution back to that block's size and channels, + ReLU; then a 3x3
    convolution to one channel. The output padding is whatever restores the size before the pool."""
    sizes = []                 # (channels, size before the pool) of each pooled block
    h = 28
    for b in spec.encoder.blocks:
        h = h + 2 * b.padding - b.kernel + 1
        if b.pool:
            sizes.append((b.channels, h))
            h = -(-h // 2) if b.pool_ceil else h // 2
    layers = []
    for channels, target in reversed(sizes):
        out_pad = target - ((h - 1) * 2 - 2 + 3)
        layers.append(DecoderLayer(channels, 3, 2, 1, out_pad))
        h = target
    layers.append(DecoderLayer(1, 3, 1, (3 - 1 - (28 - h)) // 2 if h != 28 else 1, 0, transposed=False, relu=False))
    return tuple(layers)


def decoder_output_shape(spec: RunSpec) -> tuple[int, int, int]:
    """(C, H, W) the decoder gives back from the code, by PyTorch's size rules for (transposed)
    convolutions; SpecError naming the layer where one cannot apply."""
    c, h, w = conv_output_shape(spec)
    layers = spec.decoder.layers if spec.decoder.layers is not None else derived_decoder_layers(spec)
    for i, layer in enumerate(layers):
        k, s, p, op = layer.kernel, layer.stride, layer.padding, layer.output_padding
        if layer.channels < 1 or k < 1 or s < 1 or p < 0 or op < 0:
            raise SpecError(f"decoder.layers[{i}]: channels, kernel and stride must be >= 1, "
                            "padding and output_padding >= 0")
        if layer.transposed:
            if op >= s:
                raise SpecError(f"decoder.layers[{i}]: output_padding ({op}) must be smaller than the stride ({s})")
            h, w = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
        else:
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if h < 1 or w < 1:
            raise SpecError(f"decoder.layers[{i}]: the image shrinks to {h}x{w}")
        c = layer.channels
    return c, h, w


def check_architecture(spec: RunSpec) -> None:
    """SpecError unless the network runs on a 28x28 image and an autoencoder gives back (1, 28, 28)."""
    conv_output_shape(spec)
    if spec.kind == "autoencoder":
        out = decoder_output_shape(spec)
        if out != (1, 28, 28):
            raise SpecError(f"{spec.name}: the decoder gives {out}, not (1, 28, 28); "
                            "set decoder.layers (kernel, padding, output_padding) so that it does")


_MISSING = object()

# Short names for the fields people change most.
ALIASES = {
    "lr": "optimizer.lr", "optimizer": "optimizer.name", "weight_decay": "optimizer.weight_decay",
    "momentum": "optimizer.momentum", "dropout": "encoder.dropout", "bottleneck": "encoder.bottleneck",
    "n": "encoder.bottleneck", "output": "decoder.output", "hidden": "head.hidden",
    "translate": "recipe.translate", "hflip": "recipe.hflip", "label_smoothing": "recipe.label_smoothing",
    "schedule": "recipe.schedule", "warmup_epochs": "recipe.warmup_epochs", "select": "recipe.select",
    "drawn": "recipe.drawn",
}


def resolve_alias(path: str) -> str:
    return ALIASES.get(path, path)


def parse_value(text: str) -> object:
    """A `--set` value as TOML (numbers, true/false, arrays, inline tables), else the plain string.

    'none' or 'null' give None, for optional fields such as encoder.bottleneck.
    """
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected FIELD=VALUE, e.g. optimizer.lr=0.01")
    path, value = text.split("=", 1)
    return path.strip(), parse_value(value.strip())


def set_path(d: dict, path: str, value: object) -> None:
    """Set a dotted field in a spec dict, refusing paths the spec does not have."""
    parts = path.split(".")
    node = d
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "the spec"
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "nothing (not a table)"
            raise SpecError(f"unknown field {path!r}: {where} has {known}")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested spec dict -> {"optimizer.lr": 0.001, ...}; lists (blocks, layers) stay whole values."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _build(cls, d, path: str):
    """A dataclass from a dict, checking every key and value type; errors name the field."""
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise SpecError(f"{path or 'spec'}: expected a table of fields, got {d!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise SpecError(f"unknown field {path}{sorted(unknown)[0]!r}; {cls.__name__} has {', '.join(fields)}")
    kwargs = {}
    for name, value in d.items():
        kwargs[name] = _convert(hints[name], value, f"{path}{name}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise SpecError(f"{path or 'spec'}: {e}") from None


def _convert(tp, value, path: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{path}: expected a list, got {value!r}")
        return tuple(_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise SpecError(f"{path}: expected a whole number, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(f"{path}: expected a string, got {value!r}")
        return value
    raise SpecError(f"{path}: unsupported type {tp}")


def read_toml(path, what: str, error: type[Exception]) -> dict:
    """A TOML file's tables; `error` with one line naming the file where it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what} {path} is not valid TOML: {e}") from None


def load_spec_file(path: str) -> tuple[str | None, dict]:
    """A TOML spec file: optional `preset = "NAME"` plus spec fields (tables for the nested parts).

    Returns (preset name or None, the fields as dotted overrides).
    """
    d = read_toml(path, "spec file", SpecError)
    preset = d.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise SpecError(f"spec file {path}: preset must be a name, got {preset!r}")
    return preset, _dotted(d)


def _dotted(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested tables -> dotted overrides, except the list-valued fields and inline table values."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key in ("encoder", "decoder", "head", "optimizer", "recipe"):
            out.update(_dotted(v, key + "."))
        else:
            out[key] = v
    return out
