"""The Representations page under AppTest, view by view, on the tiny trained store (200 images)."""
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "pages/representations.py"
VIEWS = ["Similarity (CKA)", "Probes", "Aligned maps", "One input", "Attributions"]


@pytest.fixture
def repr_store(trained_store, monkeypatch):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(trained_store.root))
    monkeypatch.setenv("FMNIST_REPR_IMAGES", "200")
    import fmnist_app.representations as rep
    monkeypatch.setattr(rep, "LIMIT", 200)
    return trained_store


def _page(view: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    at.run()
    if view is not None:
        at.radio(key="repr_view").set_value(view).run()
    return at


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in [*at.get("vega_lite_chart"), *at.get("arrow_vega_lite_chart")]]


def test_similarity_view_and_the_url(repr_store, tiny_ids):
    at = _page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Representations" and not at.warning
    assert at.query_params["rset"].split(",") == [tiny_ids[k] for k in
                                                 ("autoencoder", "scratch", "finetune", "frozen_random", "frozen_pretrained")]
    specs = _specs(at)
    assert len(specs) == 2
    tooltip = json.dumps(specs[0])
    assert "layer of autoencoder" in tooltip and "layer of scratch" in tooltip and "bootstrap std" in tooltip
    assert any("CKA" in c.value and "unbiased HSIC" in c.value for c in at.caption)


def test_a_link_with_a_run_set_and_a_bad_id(repr_store, tiny_ids):
    chosen = f"{tiny_ids['scratch']},untrained:{tiny_ids['scratch']},no-such-run"
    at = _page(rset=chosen)
    assert not at.exception, at.exception
    assert any("no-such-run" in w.value for w in at.warning)
    assert at.multiselect(key="_w_rset").value == [tiny_ids["scratch"], f"untrained:{tiny_ids['scratch']}"]


@pytest.mark.parametrize("view", VIEWS[1:])
def test_every_view_renders(repr_store, tiny_ids, view):
    if view == "Attributions":
        pytest.importorskip("captum")
    at = _page(view, rset=f"{tiny_ids['scratch']},{tiny_ids['finetune']}")      # two runs: quick
    assert not at.exception, at.exception
    assert not at.error
    if view == "Probes":
        spec = _specs(at)[0]
        assert "raw pixels" in json.dumps(spec)
        table = at.dataframe[0].value
        assert list(table.index) == ["block1", "block2", "block3", "hidden1", "logits"]
        assert list(table.columns) == ["scratch", "finetune"]
    elif view == "Aligned maps":
        spec = _specs(at)[0]
        assert [sub["title"] for sub in spec["hconcat"]] == ["scratch", "finetune"]
        # One brush shared by every map: the selection lives at the top and each map's colour tests it.
        assert [p["name"] for p in spec.get("params", [])] == ["brush"]
        assert all("brush" in json.dumps(sub["encoding"]["color"]) for sub in spec["hconcat"])
    elif view == "One input":
        captions = " ".join(str(img.proto) for img in at.get("image"))
        assert "first layer" in captions and "block3 (64, 7, 7)" in captions
        assert "logits (10,)" in captions and "decoder1" not in captions      # the two classifiers of the set
    else:
        captions = json.dumps([str(img.proto) for img in at.get("image")])
        assert "Grad-CAM" in captions and "integrated gradients" in captions
        assert any("Adebayo" in c.value for c in at.caption)


def test_maps_are_aligned_and_cached(trained_store, tiny_ids, fmnist):
    from fmnist_core.analysis import represent as R
    from fmnist_core.analysis.maps import aligned_maps, procrustes_to
    rng = np.random.default_rng(0)
    target = rng.standard_normal((50, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    assert np.allclose(procrustes_to(target, 3 * target @ rot + 5), target, atol=1e-5)
    runs = [R.open_run(trained_store, tiny_ids[k], fmnist) for k in ("scratch", "finetune")]
    images = fmnist.test_images[:200].numpy()
    m = aligned_maps(trained_store, runs, images, "block2")
    assert m["coords"].shape == (2, 200, 2) and np.isfinite(m["coords"]).all()
    again = aligned_maps(trained_store, runs, images, "block2")
    assert np.array_equal(again["coords"], m["coords"]) and again["seconds"] == m["seconds"]   # from the cache
    with pytest.raises(R.RepresentationError, match="no layer 'hidden9'"):
        aligned_maps(trained_store, runs, images, "hidden9")


def test_attributions_point_at_the_garment(trained_store, tiny_ids, fmnist):
    pytest.importorskip("captum")
    from fmnist_core.analysis.attributions import METHODS, attributions
    image = fmnist.test_images[0].numpy()
    out = attributions(trained_store.load_model(tiny_ids["scratch"]), image)
    assert set(out["maps"]) == set(METHODS) and 0 <= out["target"] < 10
    for m in out["maps"].values():
        assert m.shape == (28, 28) and np.abs(m).max() == pytest.approx(1.0)
    # Saliency is larger on the garment than on the empty border (Fashion-MNIST's background is 0).
    sal = np.abs(out["maps"]["saliency"])
    assert sal[image > 0].mean() > sal[image == 0].mean()
    with pytest.raises(Exception, match="autoencoder"):
        attributions(trained_store.load_model(tiny_ids["autoencoder"]), image)


def test_without_runs_the_page_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_CHECKPOINTS", str(tmp_path / "empty"))
    at = _page()
    assert not at.exception, at.exception
    assert any("checkpoints" in w.value and "fmnist_core train" in w.value for w in at.warning), \
        [w.value for w in at.warning]
