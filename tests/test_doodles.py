"""The benchmark's held-out doodles: every class in both kinds renders, repeats under a seed, and goes
through the app's preprocessing to a framed garment (benchmarks/doodles.py, realworld.py)."""
import numpy as np

from benchmarks.doodles import KINDS, PROTOTYPES, render_doodle
from benchmarks.realworld import NEW_VARIANTS, render
from fmnist_core.preprocess import preprocess_bytes


def test_every_class_renders_repeats_and_preprocesses():
    assert sorted(PROTOTYPES) == list(range(10))
    for kind in KINDS:
        for label in range(10):
            a = render_doodle(label, kind, np.random.default_rng([label, 1]))
            assert a == render_doodle(label, kind, np.random.default_rng([label, 1]))
            assert a != render_doodle(label, kind, np.random.default_rng([label, 2]))
            x = preprocess_bytes(a).input
            assert x.shape == (28, 28) and max((x > 0.1).any(0).sum(), (x > 0.1).any(1).sum()) >= 26


def test_canvas_kinds_render_garments_as_the_canvas_gives_them(fmnist):
    img = fmnist.test_images[0].numpy()
    for variant in NEW_VARIANTS:
        blob = render(img, variant, np.random.default_rng(0), int(fmnist.test_labels[0]))
        assert blob[:4] == b"\x89PNG" and preprocess_bytes(blob).input.max() > 0.5
