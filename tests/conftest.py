"""Shared fixtures: the real Fashion-MNIST files (small slices of them) and a tiny trained store."""
from __future__ import annotations

import os

import pytest
import torch

from fmnist_core import RunStore, load_fashion_mnist, reference_specs, split
from fmnist_core.train import train_runs

torch.set_num_threads(min(2, os.cpu_count() or 1))

# Tiny runs: the reference protocol's spec with these fields, 1,200 training images.
TINY = {"epochs": 2, "subset": 1200}


@pytest.fixture(autouse=True)
def _no_user_runs(tmp_path_factory, monkeypatch):
    """Keep every test away from the real user folder (~/.local/share/fmnist-explorer/runs)."""
    monkeypatch.setenv("FMNIST_USER_RUNS", str(tmp_path_factory.getbasetemp() / "user-runs"))


@pytest.fixture(scope="session")
def fmnist():
    """The real data set (the README's test command installs Debian's dataset-fashion-mnist)."""
    return load_fashion_mnist()


@pytest.fixture(scope="session")
def tiny_split(fmnist):
    return split(fmnist, subset=1200, seed=0)


def tiny_specs(**extra) -> dict:
    """The reference protocol's five specs, shrunk: {"autoencoder": spec, "scratch": spec, ...}."""
    return reference_specs({**TINY, **extra})


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, fmnist):
    """The reference protocol's five runs trained for 2 epochs on 1,200 images, in a store of their own."""
    store = RunStore(tmp_path_factory.mktemp("store"))
    train_runs(list(tiny_specs().values()), fmnist, store)
    return store


@pytest.fixture(scope="session")
def tiny_ids() -> dict[str, str]:
    """{"autoencoder": run id, "scratch": run id, ...} of `trained_store`."""
    return {name: spec.run_id for name, spec in tiny_specs().items()}


@pytest.fixture(scope="session")
def sketch_store(tmp_path_factory, trained_store, fmnist):
    """`trained_store` plus a tiny `sketch-robust` run (1 epoch on 1,200 images), in a store of its own."""
    import shutil
    from fmnist_core.presets import specs_for
    from fmnist_core.train import train_run
    root = tmp_path_factory.mktemp("sketch") / "store"
    shutil.copytree(trained_store.root, root)
    store = RunStore(root)
    train_run(specs_for("sketch-robust", {"epochs": 1, "subset": 1200})[-1], fmnist, store)
    return store


def whole_and_resumed(spec, fmnist, tmp_path):
    """`spec` trained uninterrupted in one store, and in another stopped during epoch 2 and resumed:
    (whole manifest, resumed manifest, the second store)."""
    from fmnist_core.train import train_run

    whole = train_run(spec, fmnist, RunStore(tmp_path / "a"))
    store = RunStore(tmp_path / "b")

    class Stop(Exception):
        pass

    def stop(event):
        if event["type"] == "batch" and event["epoch"] == 2:
            raise Stop()
    with pytest.raises(Stop):
        train_run(spec, fmnist, store, callback=stop)
    return whole, train_run(spec, fmnist, store), store
