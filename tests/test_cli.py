import io
import json

import numpy as np
import pytest
from PIL import Image

from fmnist_core import RunStore
from fmnist_core.__main__ import main
from fmnist_core.presets import SCHEMES as CLASSIFIERS


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_train_then_runs_then_evaluate_json(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    assert main(["train", "--epochs", "1", "--subset", "600", "--checkpoints", ck, "--quiet", "--device", "cpu"]) == 0
    trained = capsys.readouterr().out.split()
    assert len(trained) == 5 and trained[0].startswith("reference-autoencoder-")
    assert main(["runs", "--checkpoints", ck, "--json"]) == 0
    runs = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(runs) == set(trained)
    for r in runs.values():
        assert {"id", "name", "kind", "status", "epochs_done", "epochs", "read_only", "parent", "spec"} <= set(r)
        assert r["status"] == "complete" and r["epochs_done"] == r["epochs"] == 1 and r["read_only"]
        assert (r["test_accuracy"] if r["kind"] == "classifier" else r["test_mse"]) is not None
        assert r["spec"]["subset"] == 600
    finetune = next(r for r in runs.values() if r["name"] == "reference-finetune")
    assert finetune["parent"] == trained[0]
    assert main(["evaluate", "--checkpoints", ck, "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"autoencoder", *CLASSIFIERS}
    assert 0 < out["autoencoder"]["test_mse"] < 1
    for name in CLASSIFIERS:
        r = out[name]
        conf = np.array(r["confusion"])
        assert conf.shape == (10, 10) and r["test_loss"] > 0
        np.testing.assert_allclose(conf.sum(1), 1.0, atol=1e-6)
        # 1,000 test images per class: the accuracy is the mean of the normalised diagonal.
        assert r["test_accuracy"] == pytest.approx(np.trace(conf) / 10, abs=1e-6)


def test_evaluate_without_checkpoints_fails_clearly(tmp_path, capsys):
    assert main(["evaluate", "--checkpoints", str(tmp_path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "no run reference-scratch-" in out["scratch"]["error"]


def test_classify_json_reports_each_file_and_fails_only_the_bad_one(trained_store, fmnist, tmp_path, capsys):
    good = tmp_path / "coat.png"
    good.write_bytes(_png(fmnist.test_images[0].numpy()))
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    missing = tmp_path / "missing.png"
    code = main(["classify", str(good), str(bad), str(missing), "--checkpoints", str(trained_store.root), "--json"])
    assert code == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["ok"] for r in lines] == [True, False, False]
    assert lines[0]["file"] == str(good)
    preds = lines[0]["predictions"]
    assert set(preds) == set(CLASSIFIERS)
    for p in preds.values():
        assert len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-4
        assert p["index"] == int(np.argmax(p["probabilities"]))
    assert "text" in lines[1]["error"]
    assert "cannot read" in lines[2]["error"]


def test_classify_all_good_exits_zero(trained_store, fmnist, tmp_path, capsys):
    f = tmp_path / "a.png"
    f.write_bytes(_png(fmnist.test_images[1].numpy()))
    assert main(["classify", str(f), "--checkpoints", str(trained_store.root), "--json"]) == 0


def test_bad_arguments_exit_cleanly(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "0"])
    assert e.value.code == 2


def test_training_again_on_a_store_never_touches_its_finished_runs(trained_store, tiny_ids, tmp_path, capsys):
    """The old data-loss defect: a shorter run over the shipped store replaced its 50-epoch runs."""
    import shutil
    ck = tmp_path / "ck"
    shutil.copytree(trained_store.root, ck)
    before = {p: p.read_bytes() for p in ck.rglob("*") if p.is_file()}
    assert main(["train", "--epochs", "1", "--subset", "600", "--checkpoints", str(ck), "--quiet",
                 "--models", "frozen_random"]) == 0
    new_id = capsys.readouterr().out.split()[-1]
    assert new_id not in tiny_ids.values()
    assert all(p.read_bytes() == data for p, data in before.items())     # not one byte changed
    assert RunStore(ck).summary(new_id)["epochs"] == 1


def test_train_a_preset_with_set_and_evaluate_and_classify_it_by_run(fmnist, tmp_path, capsys):
    ck = str(tmp_path / "ck")
    assert main(["train", "--preset", "r2024-scratch", "--epochs", "1", "--subset", "600", "--set", "lr=0.002",
                 "--set", "head.hidden=[32]", "--seed", "3", "--checkpoints", ck, "--quiet"]) == 0
    (run,) = capsys.readouterr().out.split()
    spec = RunStore(ck).spec(run)
    assert (spec.optimizer.lr, spec.head.hidden, spec.seed, spec.epochs) == (0.002, (32,), 3, 1)
    assert main(["evaluate", "--checkpoints", ck, "--run", run, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [run]
    # The whole test set through the run's last weights, computed here (training scored a subset of it).
    import torch
    from fmnist_core.data import scale
    model = RunStore(ck).load_model(run, "last").eval()
    with torch.no_grad():
        pred = model(scale(fmnist.test_images, spec.input_range)).argmax(1)
    assert out[run]["test_accuracy"] == pytest.approx(float((pred == fmnist.test_labels).float().mean()), abs=2e-4)
    img = tmp_path / "a.png"
    img.write_bytes(_png(fmnist.test_images[3].numpy()))
    assert main(["classify", str(img), "--checkpoints", ck, "--run", run, "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["predictions"]) == [run]


@pytest.mark.parametrize("args, message", [
    (["--set", "optimizer.lrr=1"], "unknown field 'optimizer.lrr'"),
    (["--set", "lr"], "FIELD=VALUE"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--models", "bogus"], "unknown model 'bogus'"),
    (["--spec", "/nonexistent/spec.toml"], "cannot read spec file /nonexistent/spec.toml"),
    (["--data", "/nonexistent/fmnist"], "--data names /nonexistent/fmnist"),
])
def test_bad_train_input_gets_one_clear_message(args, message, tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--subset", "600", "--checkpoints", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_explicit_data_folder_without_the_files_is_never_replaced_by_another_copy(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "my-data"
    empty.mkdir()
    monkeypatch.setenv("FMNIST_DATA", str(empty))
    assert main(["evaluate", "--checkpoints", str(tmp_path / "ck")]) == 2
    assert str(empty) in capsys.readouterr().err


def test_unknown_run_is_named(trained_store, capsys):
    assert main(["evaluate", "--checkpoints", str(trained_store.root), "--run", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_command_quietly(monkeypatch, capsys):
    import os
    import sys
    read_end, write_end = os.pipe()
    os.close(read_end)                          # `... | head` after head has gone: writes fail with EPIPE
    out = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", out)
    try:
        assert main(["study", "list"]) == 141   # no traceback: the shell's code for a closed pipe
        out.write("more")
        out.flush()                             # stdout now goes nowhere, so the exit's flush cannot fail
    finally:
        out.close()
