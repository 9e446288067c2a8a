"""One loop for every run: metrics, resume, skip, continuation, per-run locks, other optimizers and scales."""
import threading

import pytest

from fmnist_core import RunStore, specs_for
from fmnist_core.runs import TrainingBusy
from fmnist_core.train import train_run, train_runs

from conftest import tiny_specs

SCRATCH = tiny_specs(epochs=3)["scratch"]


def test_short_run_lowers_the_loss_and_records_every_metric(tmp_path, fmnist):
    m = train_run(SCRATCH, fmnist, RunStore(tmp_path))
    h = m["history"]
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert h[-1]["val_loss"] < h[0]["val_loss"] and h[-1]["train_loss"] < h[0]["train_loss"]
    for key in ("train_loss_running", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
                "test_acc", "seconds", "train_images_per_s"):
        assert key in h[0]
    assert m["complete"] and 1 <= m["best_epoch"] <= 3 and m["id"] == SCRATCH.run_id
    assert "optim" not in m["roles"]          # finished: resume state is dropped


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_result(tmp_path, fmnist):
    whole = train_run(SCRATCH, fmnist, RunStore(tmp_path / "a"))
    store = RunStore(tmp_path / "b")

    def stop_in_epoch_three(event):
        if event["type"] == "batch" and event["epoch"] == 3:
            raise Stop()          # killed in the middle of epoch 3

    with pytest.raises(Stop):
        train_run(SCRATCH, fmnist, store, callback=stop_in_epoch_three)
    partial = store.manifest(SCRATCH.run_id)
    assert len(partial["history"]) == 2 and not partial["complete"] and "optim" in partial["roles"]
    assert store.summary(SCRATCH.run_id)["status"] == "partial" and not store.is_read_only(SCRATCH.run_id)
    events = []
    resumed = train_run(SCRATCH, fmnist, store, callback=events.append)
    assert events[0]["type"] == "start" and events[0]["start_epoch"] == 3
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    # Seeded order and dropout: the resumed run reproduces the uninterrupted one.
    assert resumed["history"][2]["val_loss"] == pytest.approx(whole["history"][2]["val_loss"], rel=1e-4)


def test_the_same_spec_trains_once(tmp_path, fmnist):
    store = RunStore(tmp_path)
    spec = tiny_specs(epochs=1)["frozen_random"]
    first = train_run(spec, fmnist, store)
    events = []
    again = train_run(spec.replace(name="another-name"), fmnist, store, callback=events.append)
    assert events == [{"type": "skip", "run": spec.run_id, "reason": "already trained"}]
    assert again == first and store.run_ids() == [spec.run_id]


def test_more_epochs_of_a_complete_run_make_a_new_run_that_continues_it(tmp_path, fmnist):
    store = RunStore(tmp_path)
    short = tiny_specs(epochs=1)["frozen_random"]
    before = train_run(short, fmnist, store)
    longer = short.replace(epochs=2)
    m = train_run(longer, fmnist, store)
    assert m["id"] != before["id"] and m["provenance"]["started_from"] == {"run": short.run_id, "epoch": 1}
    assert m["history"][0] == before["history"][0] and len(m["history"]) == 2
    assert store.manifest(short.run_id) == before                  # the finished run is untouched
    assert store.summary(m["id"])["parent"] == short.run_id
    store.verify(m["id"])


def test_pretrained_schemes_need_their_autoencoder(tmp_path, fmnist):
    with pytest.raises(Exception, match="train it first"):
        train_run(tiny_specs()["finetune"], fmnist, RunStore(tmp_path))


def test_one_process_per_run_and_several_runs_at_once(tmp_path, fmnist):
    store = RunStore(tmp_path)
    specs = tiny_specs(epochs=2)
    started, release = threading.Event(), threading.Event()

    def hold(event):
        if event["type"] == "epoch":          # after epoch 1 is written
            started.set()
            release.wait(30)

    first = threading.Thread(target=train_run, args=(specs["frozen_random"], fmnist, store),
                             kwargs={"callback": hold})
    first.start()
    try:
        assert started.wait(30)
        assert store.is_training(specs["frozen_random"].run_id)
        assert store.summary(specs["frozen_random"].run_id)["status"] == "training"
        with pytest.raises(TrainingBusy, match="being trained by another process"):
            train_run(specs["frozen_random"], fmnist, store)
        # Another run of the same store trains meanwhile, under its own lock.
        assert train_run(specs["scratch"], fmnist, store)["complete"]
    finally:
        release.set()
        first.join()
    assert not store.is_training(specs["frozen_random"].run_id)
    assert store.progress(specs["frozen_random"].run_id)["status"] == "finished"


@pytest.mark.parametrize("optimizer", [{"optimizer.name": "sgd", "optimizer.momentum": 0.9, "lr": 0.01},
                                       {"optimizer.name": "sgd"},          # no momentum: a None buffer
                                       {"optimizer.name": "adamw", "optimizer.weight_decay": 0.05}])
def test_other_optimizers_train_and_resume(tmp_path, fmnist, optimizer):
    spec = tiny_specs(epochs=2, **optimizer)["frozen_random"]
    whole = train_run(spec, fmnist, RunStore(tmp_path / "a"))
    store = RunStore(tmp_path / "b")
    with pytest.raises(Stop):
        train_run(spec, fmnist, store, callback=lambda e: (_ for _ in ()).throw(Stop())
                  if e["type"] == "batch" and e["epoch"] == 2 else None)
    resumed = train_run(spec, fmnist, store)
    assert resumed["history"][1]["val_loss"] == pytest.approx(whole["history"][1]["val_loss"], rel=1e-4)


def test_a_document_network_with_sigmoid_and_unit_pixels_trains_end_to_end(tmp_path, fmnist):
    store = RunStore(tmp_path)
    ae, clf = specs_for("r2024-finetune", {"epochs": 1, "subset": 1200})
    out = train_runs([ae, clf], fmnist, store)
    assert list(out) == [ae.run_id, clf.run_id]
    assert 0 < out[ae.run_id]["history"][0]["test_loss"] < 0.2     # [0, 1] targets
    assert out[clf.run_id]["provenance"]["encoder_source"]["run"] == ae.run_id


def test_frozen_schemes_evaluate_from_cached_features_with_the_same_numbers(tiny_split):
    from fmnist_core.models import make_model
    from fmnist_core.train import evaluate_split, frozen_features

    model = make_model(tiny_specs()["frozen_random"])
    x, y = tiny_split.train_x[:700], tiny_split.train_y[:700]
    whole = evaluate_split(model, x, y, batch_size=300)
    feats = frozen_features(model, x, batch_size=300)
    assert feats.shape == (700, 3136)
    cached = evaluate_split(model, x, y, batch_size=300, features=feats)
    assert cached["acc"] == whole["acc"]
    assert cached["loss"] == pytest.approx(whole["loss"], rel=1e-5)
