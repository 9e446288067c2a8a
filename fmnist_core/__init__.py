"""Fashion-MNIST representation learning: autoencoders and the classifiers that reuse their encoders.

The core library of the explorer: run specs and presets, data, networks, training, the run store,
evaluation, inference and latent-space tools. It never imports Streamlit; the app's pages call into it.
"""
from .config import CLASS_NAMES
from .data import DataError, load_fashion_mnist, split
from .presets import SCHEMES, preset, reference_specs, specs_for
from .runs import RunStore, TrainingBusy
from .spec import RunSpec, SpecError
from .store import CheckpointError

AUTOENCODER = "autoencoder"
CLASSIFIERS = SCHEMES

__all__ = [
    "AUTOENCODER", "CLASS_NAMES", "CLASSIFIERS", "SCHEMES", "DataError", "load_fashion_mnist", "split",
    "preset", "reference_specs", "specs_for", "RunStore", "TrainingBusy", "RunSpec", "SpecError",
    "CheckpointError",
]
