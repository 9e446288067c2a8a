"""Constants shared by the package: class names, pixel scaling, the published reference results."""
from __future__ import annotations

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# Published results for the reference protocol (2026 report, Table I, after 50 epochs):
# train loss, validation loss, train accuracy, validation accuracy, accuracy gap in points.
REFERENCE_RESULTS = {
    "finetune": {"train_loss": 0.0172, "val_loss": 0.3154, "train_acc": 0.9955, "val_acc": 0.9276, "gap_pts": 6.79},
    "scratch": {"train_loss": 0.0248, "val_loss": 0.3067, "train_acc": 0.9922, "val_acc": 0.9260, "gap_pts": 6.62},
    "frozen_pretrained": {"train_loss": 0.1502, "val_loss": 0.2913, "train_acc": 0.9420, "val_acc": 0.9041, "gap_pts": 3.79},
    "frozen_random": {"train_loss": 0.3752, "val_loss": 0.4125, "train_acc": 0.8575, "val_acc": 0.8469, "gap_pts": 1.06},
}

# "signed" pixels are scaled as (x/255 - MEAN) / STD, i.e. to [-1, 1].
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5
