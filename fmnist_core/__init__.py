"""Fashion-MNIST representation learning: a convolutional autoencoder and four transfer classifiers.

The core library of the explorer: data, models, training, checkpoints, evaluation, inference and
latent-space tools. It never imports Streamlit; the app's pages call into it.
"""
from .config import AUTOENCODER, CLASS_NAMES, CLASSIFIERS, MODEL_NAMES, ModelConfig, TrainConfig
from .data import DataError, load_fashion_mnist, split
from .store import CheckpointError, CheckpointStore

__all__ = [
    "AUTOENCODER", "CLASS_NAMES", "CLASSIFIERS", "MODEL_NAMES", "ModelConfig", "TrainConfig",
    "DataError", "load_fashion_mnist", "split", "CheckpointError", "CheckpointStore",
]
