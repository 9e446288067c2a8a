import gzip

import pytest
import torch

from fmnist_core.data import DataError, load_fashion_mnist, read_idx, scale, split


def test_real_files_load_with_expected_shapes(fmnist):
    assert fmnist.train_images.shape == (60_000, 28, 28) and fmnist.train_images.dtype == torch.uint8
    assert fmnist.test_images.shape == (10_000, 28, 28)
    assert fmnist.train_labels.shape == (60_000,) and int(fmnist.train_labels.max()) == 9
    assert torch.bincount(fmnist.test_labels).tolist() == [1000] * 10


def test_split_is_fixed_by_seed_and_disjoint(fmnist):
    a = split(fmnist, val_size=10_000, seed=0)
    b = split(fmnist, val_size=10_000, seed=0)
    assert len(a.train_x) == 50_000 and len(a.val_x) == 10_000 and len(a.test_x) == 10_000
    assert torch.equal(a.val_y, b.val_y) and a.fingerprint == b.fingerprint
    c = split(fmnist, val_size=10_000, seed=1)
    assert not torch.equal(a.val_y, c.val_y)


def test_scale_maps_to_minus_one_one():
    x = scale(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    assert x.shape == (1, 1, 1, 2)
    assert x.flatten().tolist() == [-1.0, 1.0]


def test_missing_data_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr("fmnist_core.data.DEBIAN_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("TORCHVISION_DATA", str(tmp_path / "tv"))
    monkeypatch.delenv("FMNIST_DATA", raising=False)
    with pytest.raises(DataError) as e:
        load_fashion_mnist()
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and str(tmp_path / "tv") in msg
    assert "apt-get install dataset-fashion-mnist" in msg


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_an_explicit_folder_without_the_files_is_an_error_naming_it(tmp_path, monkeypatch, how):
    """Never a silent fall-back to another copy (Debian's package is installed here)."""
    named = tmp_path / "my-data"
    named.mkdir()
    if how == "environment":
        monkeypatch.setenv("FMNIST_DATA", str(named))
    with pytest.raises(DataError) as e:
        load_fashion_mnist(named if how == "argument" else None)
    msg = str(e.value)
    assert str(named) in msg and ("--data" if how == "argument" else "$FMNIST_DATA") in msg


def test_scale_to_unit_range():
    x = scale(torch.tensor([[[0, 255]]], dtype=torch.uint8), "unit")
    assert x.flatten().tolist() == [0.0, 1.0]


def _write(path, payload: bytes):
    with gzip.open(path, "wb") as f:
        f.write(payload)


def test_damaged_files_are_refused_clearly(tmp_path):
    bad_magic = tmp_path / "a-idx1-ubyte.gz"
    _write(bad_magic, b"\x00\x00\x09\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    with pytest.raises(DataError, match="magic"):
        read_idx(bad_magic)
    truncated = tmp_path / "b-idx3-ubyte.gz"
    _write(truncated, b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28)) + b"\x00" * 100)
    with pytest.raises(DataError, match="truncated"):
        read_idx(truncated)
    good = tmp_path / "c-idx1-ubyte"
    good.write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x07\x08\x09")
    assert read_idx(good).tolist() == [7, 8, 9]


def test_a_folder_with_wrong_counts_is_refused(tmp_path):
    # Four well-formed IDX files that hold too few images: the count check must catch it.
    def idx(dims, data):
        return b"\x00\x00\x08" + bytes([len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + data
    for part, n in (("train", 5), ("t10k", 5)):
        (tmp_path / f"{part}-images-idx3-ubyte").write_bytes(idx((n, 28, 28), bytes(n * 784)))
        (tmp_path / f"{part}-labels-idx1-ubyte").write_bytes(idx((n,), bytes(n)))
    with pytest.raises(DataError, match="expected"):
        load_fashion_mnist(tmp_path)
