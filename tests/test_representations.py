"""Representations: CKA's properties, features by layer, probes, projector files, the CLI and its refusals."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from fmnist_core.__main__ import main
from fmnist_core.analysis import cka, features as F, probes, projector
from fmnist_core.analysis import represent as R
from fmnist_core.runs import history_only


# ---- CKA ---------------------------------------------------------------------------------------
def _rng(seed=0):
    return np.random.default_rng(seed)


def test_unbiased_hsic_is_the_u_statistic():
    """The closed form equals Song et al.'s U-statistic, summed over distinct index tuples by brute force."""
    rng = _rng()
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 4)) + 0.5 * rng.standard_normal((7, 1))
    k, g, n = x @ x.T, y @ y.T, 7
    t1 = np.mean([k[i, j] * g[i, j] for i, j in itertools.permutations(range(n), 2)])
    t2 = np.mean([k[i, j] * g[q, r] for i, j, q, r in itertools.permutations(range(n), 4)])
    t3 = np.mean([k[i, j] * g[i, q] for i, j, q in itertools.permutations(range(n), 3)])
    got = cka.hsic_blocks(cka.grams([x], None), cka.grams([y], None))[0, 0, 0]
    assert got == pytest.approx(t1 + t2 - 2 * t3, rel=1e-10)


def test_cka_properties():
    rng = _rng(1)
    x = rng.standard_normal((400, 30)) @ rng.standard_normal((30, 30))
    y = np.tanh(x @ rng.standard_normal((30, 20))) + 0.3 * rng.standard_normal((400, 20))
    q, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    assert cka.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    base = cka.linear_cka(x, y)
    assert 0.2 < base < 0.99
    assert cka.linear_cka(x @ q, y) == pytest.approx(base, abs=1e-10)          # orthogonal transform
    assert cka.linear_cka(7.5 * x, 0.01 * y) == pytest.approx(base, abs=1e-10)  # isotropic scaling
    assert cka.linear_cka(x + 3.0, y - 1.0) == pytest.approx(base, abs=1e-10)   # a shift of the mean
    assert cka.linear_cka(y, x) == pytest.approx(base, abs=1e-12)               # symmetric
    # Not invariant to an arbitrary invertible linear map (that would make every wide layer alike).
    assert abs(cka.linear_cka(x * np.linspace(0.1, 10, 30), y) - base) > 1e-3


def test_unbiased_cka_is_near_zero_for_independent_wide_features():
    rng = _rng(2)
    x, y = rng.standard_normal((300, 2000)), rng.standard_normal((300, 3000))
    assert abs(cka.linear_cka(x, y)) < 0.02
    # The biased estimator, for contrast, reads these independent layers as strongly similar.
    h = np.eye(300) - 1 / 300
    kx, ky = h @ x @ x.T @ h, h @ y @ y.T @ h
    biased = (kx * ky).sum() / np.sqrt((kx * kx).sum() * (ky * ky).sum())
    assert biased > 0.5


def test_cka_grid_blocks_and_bootstrap():
    rng = _rng(3)
    x = rng.standard_normal((1000, 12))
    feats = [x, x[:, :6] + 0.1 * rng.standard_normal((1000, 6)), rng.standard_normal((1000, 5))]
    r = cka.cka_grid(feats, feats, batch=200, bootstrap=50)
    assert r["cka"].shape == (3, 3) and np.allclose(np.diag(r["cka"]), 1)
    assert np.allclose(r["cka"], r["cka"].T)
    assert (r["std"][0, 2] > 0) and (r["low"] <= r["cka"] + 1e-12).all() and (r["cka"] <= r["high"] + 1e-12).all()
    one = cka.cka_grid(feats, feats, batch=None, bootstrap=10)
    assert np.isnan(one["std"]).all()                    # one block: no spread to resample
    assert one["cka"][0, 1] == pytest.approx(r["cka"][0, 1], abs=0.05)
    assert cka.blocks(10_000) == (40, 250) and cka.blocks(400) == (1, 400)


# ---- probes ------------------------------------------------------------------------------------
def test_knn_and_linear_probe_on_a_small_set():
    rng = _rng(4)
    centres = rng.standard_normal((3, 20)) * 4
    y = rng.integers(0, 3, 600)
    x = centres[y] + rng.standard_normal((600, 20))
    assert probes.knn_accuracy(x[:400], y[:400], x[400:], y[400:]) == 1.0
    assert probes.linear_probe_accuracy(x[:400], y[:400], x[400:], y[400:]) == 1.0
    noise = rng.standard_normal((600, 20))
    assert probes.knn_accuracy(noise[:400], y[:400], noise[400:], y[400:]) < 0.55
    # Cosine: scaling a point does not move its neighbours.
    assert probes.knn_accuracy(x[:400] * rng.uniform(0.1, 10, (400, 1)), y[:400], x[400:], y[400:]) == 1.0
    wide_tr, wide_te = probes.reduce(np.repeat(x[:400], 100, 1), np.repeat(x[400:], 100, 1), max_dims=64)
    assert wide_tr.shape == (400, 64) and probes.knn_accuracy(wide_tr, y[:400], wide_te, y[400:]) == 1.0


# ---- features of stored runs ---------------------------------------------------------------------
def test_layers_by_hooks_match_the_networks_own_modules(trained_store, tiny_ids, fmnist):
    images = fmnist.test_images[:50].numpy()
    model = trained_store.load_model(tiny_ids["scratch"])
    f = F.extract(model, images, batch_size=20)
    assert list(f) == ["pixels", "block1", "block2", "block3", "hidden1", "logits"]
    x = F.model_input(model, images)
    with torch.inference_mode():
        net = model.encoder.net
        assert np.allclose(f["block1"], net[:4](x).numpy(), atol=1e-5)
        assert np.allclose(f["block3"], net(x).numpy(), atol=1e-5)
        assert np.allclose(f["logits"], model(x).numpy(), atol=1e-4)
    ae = F.extract(trained_store.load_model(tiny_ids["autoencoder"]), images)
    assert list(ae) == ["pixels", "block1", "block2", "block3", "decoder1", "decoder2", "output"]
    assert ae["decoder2"].shape == (50, 32, 28, 28) and ae["output"].shape == (50, 1, 28, 28)


def test_grams_streamed_from_the_network_equal_the_grams_of_its_features(trained_store, tiny_ids, fmnist):
    """The streamed Grams (channels-last activations flattened in memory order, a block at a time)
    are the Grams of the extracted (N, C, H, W) features: CKA ignores the order of a layer's values."""
    images = fmnist.test_images[:60].numpy()
    model = trained_store.load_model(tiny_ids["scratch"]).to(memory_format=torch.channels_last)
    names = F.layer_names(model)
    f = F.extract(model, images, batch_size=25)
    streamed = R.run_grams(model, images, names, 20)
    whole = cka.grams([f[n] for n in names], 20)
    assert streamed.k.shape == whole.k.shape == (len(names), 3, 20, 20)
    assert np.allclose(streamed.k, whole.k, rtol=1e-6, atol=1e-6 * np.abs(whole.k).max())
    with pytest.raises(ValueError, match="blocks of features"):
        cka.grams_of_blocks(iter([[f[n][:20] for n in names]]), len(names), 2, 20)


def test_features_cli_names_and_shapes_match_the_similarity_grid(trained_store, tiny_ids, tmp_path, capsys):
    ck = str(trained_store.root)
    out = tmp_path / "f.npz"
    assert main(["features", tiny_ids["finetune"], "--checkpoints", ck, "--images", "300", "--out", str(out),
                 "--projector", str(tmp_path / "proj")]) == 0
    capsys.readouterr()
    with np.load(out, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert main(["similarity", tiny_ids["finetune"], tiny_ids["autoencoder"], "--checkpoints", ck,
                 "--images", "300", "--json"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert set(sim) >= {"a", "b", "layers_a", "layers_b", "cka", "estimator", "images"}
    assert [k for k in arrays if k != "labels"] == sim["layers_a"]
    assert arrays["block1"].shape == (300, 32, 14, 14) and arrays["logits"].shape == (300, 10)
    assert arrays["labels"].shape == (300,) and sim["images"] == 300
    assert np.array(sim["cka"]).shape == (len(sim["layers_a"]), len(sim["layers_b"]))
    grid = dict(zip(sim["layers_a"], sim["cka"]))
    # The fine-tuned encoder starts from the autoencoder's; after 2 tiny epochs block1 is still close.
    assert grid["block1"][sim["layers_b"].index("block1")] > 0.8
    assert grid["pixels"][0] == pytest.approx(1.0)
    # The projector files load back: vectors per layer, labels, a sprite, a config naming them.
    proj = tmp_path / "proj"
    vec = np.loadtxt(proj / "vectors-logits.tsv", delimiter="\t")
    assert vec.shape == (300, 10) and np.allclose(vec, arrays["logits"], rtol=1e-4, atol=1e-4)
    meta = (proj / projector.METADATA).read_text().splitlines()
    assert meta[0] == "label\tclass" and len(meta) == 301 and meta[1].split("\t")[0] == str(arrays["labels"][0])
    from PIL import Image
    assert Image.open(proj / projector.SPRITE).size == (18 * 28, 18 * 28)
    config = (proj / projector.CONFIG).read_text()
    assert 'tensor_path: "vectors-logits.tsv"' in config and "single_image_dim: 28" in config
    assert not (proj / "vectors-block1.tsv").exists()        # 6,272 values an image: not by default


def test_probe_cli_has_the_pixel_row_and_one_row_per_layer(trained_store, tiny_ids, capsys):
    assert main(["probe", tiny_ids["scratch"], "--checkpoints", str(trained_store.root), "--images", "300",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["run"] == "pixels" and rows[0]["layer"] == "pixels"
    assert [r["layer"] for r in rows[1:]] == ["block1", "block2", "block3", "hidden1", "logits"]
    assert all(set(r) == {"run", "layer", "knn_accuracy", "linear_probe_accuracy"} for r in rows)
    assert rows[0]["knn_accuracy"] > 0.5                         # pixels of 10 classes: far above chance


def test_drift_of_finetune_and_refusal_for_scratch(trained_store, tiny_ids, fmnist):
    run = R.open_run(trained_store, tiny_ids["finetune"], fmnist)
    d = R.drift(trained_store, run, fmnist, limit=200)
    assert d["layers"] == ["block1", "block2", "block3"]
    assert all(0 < c < 1 for c in d["relative_change"]) and all(v > 0.5 for v in d["cka_start_end"])
    frozen = R.drift(trained_store, R.open_run(trained_store, tiny_ids["frozen_pretrained"], fmnist), fmnist, 200)
    assert frozen["relative_change"] == [0, 0, 0] and frozen["cka_start_end"] == pytest.approx([1, 1, 1])
    with pytest.raises(R.RepresentationError, match="random weights"):
        R.drift(trained_store, R.open_run(trained_store, tiny_ids["scratch"], fmnist), fmnist, 200)


def test_untrained_control_is_the_specs_initial_network(trained_store, tiny_ids, fmnist):
    run = R.open_run(trained_store, R.UNTRAINED + tiny_ids["frozen_random"], fmnist)
    trained = trained_store.load_model(tiny_ids["frozen_random"])
    # frozen_random trains only its head: its encoder is its untrained network's.
    for k, v in trained.encoder.state_dict().items():
        assert torch.equal(v, run.model.encoder.state_dict()[k])
    assert run.digest.startswith("untrained-") and run.label.startswith("untrained:")


@pytest.mark.parametrize("case", ["unknown run", "unknown layer", "history only", "other data", "too large"])
def test_bad_input_is_one_line_and_exit_2(case, trained_store, tiny_ids, tmp_path, capsys, monkeypatch):
    import shutil
    ck = tmp_path / "ck"
    shutil.copytree(trained_store.root, ck, ignore=shutil.ignore_patterns("cache"))
    run = tiny_ids["scratch"]
    args = ["features", run, "--checkpoints", str(ck), "--images", "20", "--out", str(tmp_path / "o.npz")]
    if case == "unknown run":
        args[1], expect = "no-such-run", "no run 'no-such-run'"
    elif case == "unknown layer":
        args += ["--layers", "block9"]
        expect = "has no layer 'block9'; its layers are pixels, block1"
    elif case == "history only":
        m = json.loads((ck / run / "manifest.json").read_text())
        (ck / run / "manifest.json").write_text(json.dumps(history_only(m, "too big to ship")))
        expect = "ships its training history only (too big to ship)"
    elif case == "other data":
        m = json.loads((ck / run / "manifest.json").read_text())
        m["data_fingerprint"] = "0000000000000000:val10000:seed0:n1200"
        (ck / run / "manifest.json").write_text(json.dumps(m))
        expect = "was trained on other data"
    else:
        monkeypatch.setenv(F.MAX_BYTES_ENV, "1000")
        expect = "need"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expect in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_probe_features_reduced_while_streaming_equal_the_reduced_features(trained_store, tiny_ids, fmnist):
    """Projecting each batch as it comes (channels-last rows, P's rows reordered) is `reduce` of the
    whole (N, C, H, W) features: the probes see the same numbers either way."""
    images = fmnist.test_images[:40].numpy()
    model = trained_store.load_model(tiny_ids["scratch"]).to(memory_format=torch.channels_last)
    names = ["block1", "block3", "logits"]
    f = F.extract(model, images, names)
    got = probes.reduced_features(model, images, names, max_dims=64, batch_size=15)
    for name in names:
        want, _ = probes.reduce(f[name], f[name][:1], max_dims=64)
        assert got[name].shape == want.shape == (40, min(64, f[name][0].size))
        assert np.allclose(got[name], want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
