"""Shared fixtures: the real Fashion-MNIST files (small slices of them) and a tiny trained store."""
from __future__ import annotations

import os

import pytest
import torch

from fmnist_core import CheckpointStore, TrainConfig, load_fashion_mnist, split
from fmnist_core.train import train_all

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def fmnist():
    """The real data set (the README's test command installs Debian's dataset-fashion-mnist)."""
    return load_fashion_mnist()


@pytest.fixture(scope="session")
def tiny_split(fmnist):
    return split(fmnist, subset=1200, seed=0)


TINY_CFG = TrainConfig(epochs=2, subset=1200)


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, tiny_split):
    """Every model trained for 2 epochs on 1,200 images: enough for the plumbing, a few seconds."""
    store = CheckpointStore(tmp_path_factory.mktemp("store"))
    train_all(tiny_split, store, TINY_CFG)
    return store
