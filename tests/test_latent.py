"""Latent tools: encode/decode shapes, the straight path, the UMAP map, its cache file and placement."""
import numpy as np
import pytest

from fmnist_core import latent
from fmnist_core.latent import LatentMap, decode, encode, interpolate
from fmnist_core.store import cached_arrays


def test_interpolation_runs_straight_from_a_to_b():
    a, b = np.zeros((64, 7, 7), np.float32), np.ones((64, 7, 7), np.float32)
    path = interpolate(a, b, 5)
    assert path.shape == (5, 64, 7, 7)
    assert np.array_equal(path[0], a) and np.array_equal(path[-1], b)
    assert np.allclose(path[:, 0, 0, 0], [0, 0.25, 0.5, 0.75, 1])


def test_encode_and_decode_shapes(trained_store, tiny_ids, fmnist):
    ae = trained_store.load_model(tiny_ids["autoencoder"], "last")
    z = encode(ae, fmnist.test_images[:7].numpy())
    assert z.shape == (7, 64, 7, 7) and z.dtype == np.float32
    images = decode(ae, z)
    assert images.shape == (7, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_a_linear_bottleneck_and_a_sigmoid_output_encode_decode_and_map(fmnist, tmp_path):
    """A 2024-report network: (n,) codes, a [0, 1] output shown as it is, its map cached per run."""
    from fmnist_core import RunStore, specs_for
    from fmnist_core.train import train_run
    store = RunStore(tmp_path)
    (spec,) = specs_for("r2024-autoencoder", {"epochs": 1, "subset": 600})
    train_run(spec, fmnist, store)
    ae = store.load_model(spec.run_id)
    images, labels = fmnist.test_images[:300].numpy(), fmnist.test_labels[:300].numpy()
    z = encode(ae, images)
    assert z.shape == (300, 64)
    out = decode(ae, z[:3])
    assert out.shape == (3, 28, 28) and 0 <= out.min() and out.max() <= 1
    lmap = latent.latent_map(store, spec.run_id, ae, images, labels)
    assert lmap.coords.shape == (300, 2)
    assert latent.map_path(store, spec.run_id).is_file()


def test_map_fits_places_its_own_points_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 64, 7, 7)).astype(np.float32)
    labels = np.repeat(np.arange(3), 200)
    codes = centres[labels] + rng.normal(0, 1, (600, 64, 7, 7)).astype(np.float32)
    lmap = LatentMap.fit(codes, labels)
    assert lmap.coords.shape == (600, 2) and np.isfinite(lmap.coords).all()
    # Clusters stay apart on the map: each point's map neighbours share its label.
    d = ((lmap.coords[:, None] - lmap.coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() > 0.95
    # A new code near cluster 1 is placed among cluster 1's points.
    where = lmap.place(centres[1:2] + 0.1)
    nearest = labels[((lmap.coords - where) ** 2).sum(1).argsort()[:10]]
    assert (nearest == 1).all()
    path = tmp_path / "map.npz"
    cached_arrays(path, lmap.to_arrays, LatentMap.arrays_are_valid)
    with np.load(path, allow_pickle=False) as f:      # no pickles inside
        assert set(f.files) >= {"coords", "pca_mean", "pca_components", "reduced", "labels"}
    again = LatentMap.from_arrays(cached_arrays(path, lambda: pytest.fail("the cache was not read"),
                                                LatentMap.arrays_are_valid))
    assert np.array_equal(again.coords, lmap.coords) and np.array_equal(again.labels, labels)


def test_numba_cache_is_switched_on_for_umap():
    latent.enable_numba_cache()
    import umap.layouts
    import umap.umap_
    for fn in (umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths, umap.layouts.rdist):
        assert type(fn._cache).__name__ != "NullCache", fn      # kept on disk for the next process
