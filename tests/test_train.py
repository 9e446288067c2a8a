import json
import threading

import pytest

from fmnist_core import CheckpointStore, TrainConfig
from fmnist_core.train import TrainingBusy, is_training, train_all, train_model

CFG = TrainConfig(epochs=3, subset=1200)


def test_short_run_lowers_the_loss_and_records_every_metric(tmp_path, tiny_split):
    store = CheckpointStore(tmp_path)
    m = train_model("scratch", tiny_split, store, CFG)
    h = m["history"]
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert h[-1]["val_loss"] < h[0]["val_loss"] and h[-1]["train_loss"] < h[0]["train_loss"]
    for key in ("train_loss_running", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
                "test_acc", "seconds", "train_images_per_s"):
        assert key in h[0]
    assert m["complete"] and 1 <= m["best_epoch"] <= 3
    assert "optim" not in m["roles"]          # finished: resume state is dropped


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_result(tmp_path, tiny_split):
    whole = train_model("scratch", tiny_split, CheckpointStore(tmp_path / "a"), CFG)

    store = CheckpointStore(tmp_path / "b")

    def stop_after_two_epochs(event):
        if event["type"] == "batch" and event["epoch"] == 3:
            raise Stop()          # killed in the middle of epoch 3

    with pytest.raises(Stop):
        train_model("scratch", tiny_split, store, CFG, callback=stop_after_two_epochs)
    partial = store.manifest("scratch")
    assert len(partial["history"]) == 2 and not partial["complete"] and "optim" in partial["roles"]

    events = []
    resumed = train_model("scratch", tiny_split, store, CFG, callback=events.append)
    assert events[0]["type"] == "start" and events[0]["start_epoch"] == 3
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    # Seeded order and dropout: the resumed run reproduces the uninterrupted one.
    assert resumed["history"][2]["val_loss"] == pytest.approx(whole["history"][2]["val_loss"], rel=1e-4)


def test_a_finished_model_is_not_trained_again(tmp_path, tiny_split):
    store = CheckpointStore(tmp_path)
    train_model("frozen_random", tiny_split, store, TrainConfig(epochs=1, subset=1200))
    events = []
    train_model("frozen_random", tiny_split, store, TrainConfig(epochs=1, subset=1200), callback=events.append)
    assert events == [{"type": "skip", "model": "frozen_random", "reason": "already trained"}]


def test_pretrained_schemes_need_the_autoencoder(tmp_path, tiny_split):
    with pytest.raises(Exception, match="autoencoder first"):
        train_model("finetune", tiny_split, CheckpointStore(tmp_path), CFG)


def test_only_one_run_trains_into_a_store(tmp_path, tiny_split):
    store = CheckpointStore(tmp_path)
    started, release = threading.Event(), threading.Event()

    def hold(event):
        if event["type"] == "start":
            started.set()
            release.wait(30)

    first = threading.Thread(target=train_all, args=(tiny_split, store, TrainConfig(epochs=1, subset=1200)),
                             kwargs={"models": ("frozen_random",), "callback": hold})
    first.start()
    try:
        assert started.wait(30)
        assert is_training(store)
        with pytest.raises(TrainingBusy):
            train_all(tiny_split, store, TrainConfig(epochs=1, subset=1200), models=("frozen_random",))
    finally:
        release.set()
        first.join()
    assert not is_training(store)


def test_frozen_schemes_evaluate_from_cached_features_with_the_same_numbers(tiny_split):
    from fmnist_core.config import ModelConfig
    from fmnist_core.models import make_classifier
    from fmnist_core.train import evaluate_split, frozen_features

    model = make_classifier("frozen_random", ModelConfig(), None)
    x, y = tiny_split.train_x[:700], tiny_split.train_y[:700]
    whole = evaluate_split(model, x, y, batch_size=300)
    feats = frozen_features(model, x, batch_size=300)
    assert feats.shape == (700, 3136)
    cached = evaluate_split(model, x, y, batch_size=300, features=feats)
    assert cached["acc"] == whole["acc"]
    assert cached["loss"] == pytest.approx(whole["loss"], rel=1e-5)
