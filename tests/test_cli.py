import io
import json

import numpy as np
import pytest
from PIL import Image

from fmnist_core.__main__ import main
from fmnist_core.config import CLASSIFIERS


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_train_then_evaluate_json(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    assert main(["train", "--epochs", "1", "--subset", "600", "--checkpoints", ck, "--quiet", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoints", ck, "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"autoencoder", *CLASSIFIERS}
    assert 0 < out["autoencoder"]["test_mse"] < 1
    for name in CLASSIFIERS:
        r = out[name]
        assert 0 <= r["test_accuracy"] <= 1 and r["test_loss"] > 0
        conf = np.array(r["confusion"])
        assert conf.shape == (10, 10)
        np.testing.assert_allclose(conf.sum(1), 1.0, atol=1e-6)


def test_evaluate_without_checkpoints_fails_clearly(tmp_path, capsys):
    assert main(["evaluate", "--checkpoints", str(tmp_path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "no checkpoint" in out["scratch"]["error"]


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
