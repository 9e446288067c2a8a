"""The path the drawing canvas feeds: an RGBA array -> preprocessing -> all four classifiers."""
import numpy as np
from PIL import Image, ImageDraw

from fmnist_core.presets import SCHEMES as CLASSIFIERS
from fmnist_core.inference import Predictor
from fmnist_core.preprocess import preprocess


def canvas_drawing() -> np.ndarray:
    """What st_canvas returns: (280, 280, 4) uint8, white strokes on a black background."""
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(im).line([(100, 40), (180, 40), (200, 240), (80, 240), (100, 40)],
                            fill=(255, 255, 255, 255), width=14)
    return np.asarray(im)


def test_canvas_sketch_is_classified_by_all_four(trained_store):
    pre = preprocess(canvas_drawing())
    assert pre.input.shape == (28, 28) and pre.input.dtype == np.float32
    assert pre.input.max() > 0.5 and pre.input[0].max() < 0.5 <= pre.input[14].max()
    predictor = Predictor.from_store(trained_store)
    probs = predictor.predict_proba(pre.input[None])
    assert set(probs) == set(CLASSIFIERS)
    for p in probs.values():
        assert p.shape == (1, 10) and abs(p.sum() - 1) < 1e-5
    result = predictor.classify(pre)
    assert all(r["index"] == int(np.argmax(r["probabilities"])) for r in result.values())
    rec = predictor.reconstruct(pre.input[None])
    assert rec.shape == (1, 28, 28) and 0 <= rec.min() and rec.max() <= 1


def test_test_set_predictions_are_cached_on_disk_per_weights(trained_store, tiny_ids, fmnist, tmp_path, monkeypatch):
    import shutil

    import pytest

    from fmnist_core import RunStore
    from fmnist_core.evaluate import cached_predictions

    store = RunStore(tmp_path / "ck")
    shutil.copytree(trained_store.root, store.root, ignore=shutil.ignore_patterns("cache"))   # app tests fill it
    rid = tiny_ids["scratch"]
    images = fmnist.test_images[:300].numpy()
    first = cached_predictions(store, rid, images)
    direct = Predictor.from_runs(store, {"scratch": rid}).predict(images)["scratch"]
    assert np.array_equal(first, direct)
    files = list((store.root / "cache").glob("predictions-*.npz"))
    assert len(files) == 1
    # A second call reads the file: no model is loaded.
    monkeypatch.setattr(RunStore, "load_model", lambda *a, **k: pytest.fail("recomputed"))
    assert np.array_equal(cached_predictions(store, rid, images), first)
    # Other images, or a damaged cache file, are computed afresh.
    monkeypatch.undo()
    files[0].write_bytes(b"not an npz")
    assert np.array_equal(cached_predictions(store, rid, images), first)
    assert np.array_equal(cached_predictions(store, rid, images[:100]), first[:100])
    # A model the caller has loaded already is used instead of loading it again.
    for f in (store.root / "cache").glob("predictions-*.npz"):
        f.unlink()
    loaded = store.load_model(rid)
    monkeypatch.setattr(RunStore, "load_model", lambda *a, **k: pytest.fail("loaded again"))
    assert np.array_equal(cached_predictions(store, rid, images, model=loaded), first)
