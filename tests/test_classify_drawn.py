"""A drawing on the Classify page's canvas goes to `sketch-robust` by default (end to end through the
canvas component's state under AppTest); the reference classifiers are one toggle away; without the
run the page says how to get it and falls back to the sidebar's choice. The choice of classifier per
input (fmnist_core.inputs) from the benchmark's table."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from fmnist_core.inputs import DRAWING_PRESET, for_drawings, for_uploads, preset_run

from test_app import run_page


def _canvas_state(rgba: np.ndarray) -> dict:
    """What the drawable canvas component reports after a drawing: its PNG as a data URL."""
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"drawing": {"raw": {"objects": []}, "data": url}, "backgroundFit": None}


def _trousers() -> np.ndarray:
    """A pair of trousers drawn with a 14 px white stroke on the canvas's black, slightly off centre."""
    from PIL import ImageDraw
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    pts = [(100, 40), (180, 40), (180, 250), (150, 250), (140, 90), (130, 250), (100, 250), (100, 40)]
    ImageDraw.Draw(im).line(pts, fill=(255, 255, 255, 255), width=14, joint="curve")
    return np.asarray(im)


def _draw_on_page(store_root, monkeypatch, toggle: bool = False):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(store_root))
    at = run_page("pages/classify.py")
    at.session_state["canvas"] = _canvas_state(_trousers())
    at.run()
    if toggle:
        at.toggle(key="compare_sidebar").set_value(True).run()
    assert not at.exception, at.exception
    return at


def test_a_drawing_goes_to_sketch_robust_by_default(sketch_store, monkeypatch, tiny_ids):
    at = _draw_on_page(sketch_store.root, monkeypatch)
    sketch = preset_run(sketch_store, DRAWING_PRESET)
    assert sketch is not None and sketch.startswith("sketch-robust-")
    assert [m.label for m in at.metric] == ["sketch-robust"]
    assert any("sketch-robust" in c.value and sketch in c.value for c in at.caption)
    assert [s.value for s in at.subheader][:2] == ["What the models see", "One classifier"]
    # One click away: the sidebar's classifiers (the reference four) beside it, sketch-robust first.
    at = _draw_on_page(sketch_store.root, monkeypatch, toggle=True)
    assert [m.label for m in at.metric] == ["sketch-robust", "scratch", "finetune", "frozen_random",
                                            "frozen_pretrained"]


def test_without_sketch_robust_the_page_says_how_to_get_it(trained_store, monkeypatch):
    at = _draw_on_page(trained_store.root, monkeypatch)
    assert any("python -m fmnist_core train --preset sketch-robust" in i.value for i in at.info)
    assert [m.label for m in at.metric] == ["scratch", "finetune", "frozen_random", "frozen_pretrained"]


def test_uploads_go_to_the_best_on_photos_of_the_benchmark(sketch_store, tmp_path):
    table = {"classifiers": {"reference-finetune": {"photo": {"accuracy": 0.91}},
                             "sketch-robust": {"photo": {"accuracy": 0.93}, "drawings": {"accuracy": 0.85}},
                             "recipe-scratch": {"photo": {"accuracy": 0.92}}}}
    up = for_uploads(sketch_store, table)
    assert up.preset == "sketch-robust" and up.run_id == preset_run(sketch_store, "sketch-robust")
    assert "93.0%" in up.why
    table["classifiers"]["sketch-robust"]["photo"]["accuracy"] = 0.90
    up = for_uploads(sketch_store, table)
    assert up.preset == "recipe-scratch" and up.run_id is None         # not in this store
    assert "train --preset recipe-scratch" in up.missing
    assert for_uploads(sketch_store, None).preset is None
    d = for_drawings(sketch_store, table)
    assert d.run_id.startswith("sketch-robust-") and "85%" in d.why


def test_the_shipped_benchmark_table_chooses_a_shipped_classifier_for_uploads():
    from fmnist_core import RunStore
    from fmnist_core.inputs import PHOTO_RESULTS, benchmark_table
    from fmnist_core.runs import DEFAULT_DIR
    table = benchmark_table()
    if table is None:
        pytest.skip(f"{PHOTO_RESULTS} is not written")
    assert all("photo" in row and "doodles" in row for row in table["classifiers"].values())
    up = for_uploads(RunStore(DEFAULT_DIR), table)
    best = max(row["photo"]["accuracy"] for row in table["classifiers"].values())
    assert up.run_id is not None and up.accuracy["photo"] == best
    json.dumps(table)
