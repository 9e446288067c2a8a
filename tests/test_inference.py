"""The path the drawing canvas feeds: an RGBA array -> preprocessing -> all four classifiers."""
import numpy as np
from PIL import Image, ImageDraw

from fmnist_core.config import CLASSIFIERS
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
