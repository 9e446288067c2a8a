"""Find, verify and load the Fashion-MNIST IDX files; keep them as uint8 tensors on a device.

No DataLoader and no per-sample transforms: the whole set is one tensor, batches are formed by
indexing it, and scaling to [-1, 1] happens per batch on the device.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import PIXEL_MEAN, PIXEL_STD

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "FMNIST_DATA"
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
EXPECTED_COUNT = {"train": 60_000, "test": 10_000}
HOW_TO_GET = (
    "Install Debian's package with `apt-get install dataset-fashion-mnist` "
    f"(files land in {DEBIAN_DIR}), or point --data / the {ENV_VAR} variable at a folder "
    "holding the four IDX files (plain or .gz)."
)


class DataError(RuntimeError):
    """The data set is missing or damaged; the message says where we looked and what to do."""


@dataclass
class FashionMNIST:
    """The data set as uint8 tensors: images (N, 28, 28), labels (N,) int64."""
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str            # the folder the files came from
    fingerprint: str       # sha256 of the four decoded arrays, stored in checkpoint manifests

    def to(self, device: torch.device | str) -> "FashionMNIST":
        return FashionMNIST(
            self.train_images.to(device), self.train_labels.to(device),
            self.test_images.to(device), self.test_labels.to(device),
            self.source, self.fingerprint,
        )


@dataclass
class Split:
    """Training, validation and test tensors on one device (uint8 images, int64 labels)."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    fingerprint: str


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where we look, in order: Debian's package, then torchvision's layout.

    A folder named explicitly (--data, or $FMNIST_DATA) is the only candidate: data other than the
    data the user named are never used in its place.
    """
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit:
        d = Path(explicit)
        return [d, d / "FashionMNIST" / "raw"]
    dirs: list[Path] = [DEBIAN_DIR]
    tv_root = Path(os.environ.get("TORCHVISION_DATA", Path.home() / ".cache" / "fmnist"))
    dirs.append(tv_root / "FashionMNIST" / "raw")
    expanded = []
    for d in dirs:
        expanded.append(d)
        expanded.append(d / "FashionMNIST" / "raw")   # a torchvision root given directly
    return expanded


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        p = folder / name
        if p.is_file():
            return p
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), checking its magic number and size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} could not be read ({e}). {HOW_TO_GET}") from e
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number). {HOW_TO_GET}")
    ndim = raw[3]
    if ndim not in (1, 3):
        raise DataError(f"{path} has {ndim} dimensions; expected 1 (labels) or 3 (images). {HOW_TO_GET}")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise DataError(
            f"{path} is truncated or padded: header says shape {shape} "
            f"but the file holds {len(raw) - header} data bytes. {HOW_TO_GET}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _load_dir(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in FILES.items():
        path = _find_file(folder, stem)
        if path is None:
            raise FileNotFoundError(stem)
        arrays[key] = read_idx(path)
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        n = EXPECTED_COUNT[part]
        if images.shape != (n, 28, 28) or labels.shape != (n,):
            raise DataError(
                f"{folder}: {part} files hold images {images.shape} and labels {labels.shape}; "
                f"expected ({n}, 28, 28) and ({n},). {HOW_TO_GET}")
        if labels.max() > 9:
            raise DataError(f"{folder}: {part} labels go up to {labels.max()}; expected 0..9. {HOW_TO_GET}")
    return arrays


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> FashionMNIST:
    """Load the four IDX files from the first folder that holds them all (see `candidate_dirs`).

    Raises DataError naming every folder tried and how to get the data.
    """
    tried = []
    for folder in candidate_dirs(data_dir):
        if not folder.is_dir():
            tried.append(f"{folder} (no such folder)")
            continue
        try:
            arrays = _load_dir(folder)
        except FileNotFoundError as e:
            tried.append(f"{folder} (no {e.args[0]}[.gz])")
            continue
        return _to_dataset(arrays, folder)
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit:
        named = "--data" if data_dir else f"${ENV_VAR}"
        raise DataError(f"{named} names {explicit}, which does not hold the Fashion-MNIST IDX files "
                        f"({'; '.join(tried)}). Point it at the folder that holds them, or leave it unset to "
                        f"use Debian's package in {DEBIAN_DIR}.")
    raise DataError("Fashion-MNIST was not found. Looked in:\n  " + "\n  ".join(tried) + "\n" + HOW_TO_GET)


def _to_dataset(arrays: dict[str, np.ndarray], folder: Path) -> FashionMNIST:
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(arrays[key].tobytes())
    t = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
    return FashionMNIST(
        t["train_images"], t["train_labels"].long(), t["test_images"], t["test_labels"].long(),
        str(folder), h.hexdigest()[:16],
    )


def split(data: FashionMNIST, val_size: int = 10_000, subset: int | None = None, seed: int = 0,
          device: torch.device | str = "cpu") -> Split:
    """Hold out `val_size` training images (chosen by `seed`, a spec's split_seed) for validation;
    the test set stays apart.

    With `subset`, only the first `subset` training images are used, and the validation and
    test sets shrink in proportion (at least 200 each) so a quick run stays quick.
    """
    x, y = data.train_images, data.train_labels
    test_x, test_y = data.test_images, data.test_labels
    if subset is not None:
        if subset < 2:
            raise ValueError(f"--subset must be at least 2 images, got {subset}")
        x, y = x[:subset], y[:subset]
        val_size = min(val_size, max(1, len(x) // 6))
        n_test = min(len(test_x), max(200, subset // 6))
        test_x, test_y = test_x[:n_test], test_y[:n_test]
    if not 0 < val_size < len(x):
        raise ValueError(f"validation size {val_size} must be between 1 and {len(x) - 1}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g)
    val_idx, train_idx = order[:val_size], order[val_size:]
    dev = torch.device(device)
    return Split(
        x[train_idx].to(dev), y[train_idx].to(dev), x[val_idx].to(dev), y[val_idx].to(dev),
        test_x.to(dev), test_y.to(dev),
        f"{data.fingerprint}:val{val_size}:seed{seed}:n{len(x)}",
    )


def scale(images_u8: torch.Tensor, pixel_range: str = "signed") -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28): in [-1, 1] ("signed", the reference
    normalisation) or [0, 1] ("unit")."""
    x = images_u8.unsqueeze(1).float().div_(255.0)
    return x.sub_(PIXEL_MEAN).div_(PIXEL_STD) if pixel_range == "signed" else x
