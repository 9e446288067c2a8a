"""Drawn-style training images: they keep each garment's shape and label, repeat under a seed, differ
across seeds and epochs, resume exactly; with the recipe field off nothing changes; the preset
sketch-robust builds, validates and fits its step budget."""
import math

import pytest
import torch

import fmnist_core.train as train_mod
from fmnist_core.drawn import draw, drawn_epoch
from fmnist_core.models import build, count_parameters
from fmnist_core.presets import preset, specs_for
from fmnist_core.spec import RecipeSpec, RunSpec, SpecError
from fmnist_core.train import train_one_epoch

from conftest import tiny_specs, whole_and_resumed


def _bbox(img: torch.Tensor, level: int = 40) -> tuple[int, int]:
    """(height, width) of the pixels above `level`."""
    ys, xs = torch.nonzero(img > level, as_tuple=True)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def test_drawings_repeat_under_a_seed_and_differ_across_seeds(fmnist):
    x = fmnist.train_images[:48]
    a = draw(x, generator=torch.Generator().manual_seed(3))
    b = draw(x, generator=torch.Generator().manual_seed(3))
    c = draw(x, generator=torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Rendering in chunks of any size gives the same drawings (memory use, never the result).
    assert torch.equal(a, draw(x, generator=torch.Generator().manual_seed(3), chunk=7))


def test_drawings_keep_each_garments_shape(fmnist):
    """Framed like the preprocessing frames a canvas drawing (longest side 28), untextured, and
    still the garment: trousers stay tall, sneakers stay wide."""
    labels = fmnist.train_labels[:600]
    tall = torch.nonzero(labels == 1).flatten()[:12]            # trousers
    wide = torch.nonzero(labels == 7).flatten()[:12]            # sneakers
    x = fmnist.train_images[torch.cat([tall, wide])]
    for outline in (0.0, 1.0):
        d = draw(x, outline=outline, generator=torch.Generator().manual_seed(0))
        for i, img in enumerate(d):
            h, w = _bbox(img)
            assert max(h, w) >= 26, (outline, i, h, w)                   # framed to the full frame
            assert (h > w) == (i < len(tall)), (outline, i, h, w)
        filled = d[:, 10:18, 10:18].float().mean()
        # Outlines leave the inside of the garment dark; filled shapes do not.
        assert (filled < 60) if outline == 1.0 else (filled > 100), (outline, float(filled))
    # No texture: a filled drawing holds few distinct grey levels inside (the original many).
    flat = draw(x[:4], outline=0.0, generator=torch.Generator().manual_seed(1))
    for img, orig in zip(flat, x[:4]):
        inside = img[img > 0.9 * img.max()]
        assert inside.unique().numel() < orig[orig > 0].unique().numel()


def test_a_share_of_the_epoch_is_drawn_and_the_rest_untouched(fmnist):
    x = fmnist.train_images[:400]
    out = drawn_epoch(x, 0.5, 0.3, 15.0, torch.Generator().manual_seed(0))
    changed = (out != x).flatten(1).any(1)
    assert out.shape == x.shape and 140 <= int(changed.sum()) <= 260
    again = drawn_epoch(x, 0.5, 0.3, 15.0, torch.Generator().manual_seed(0))
    other = drawn_epoch(x, 0.5, 0.3, 15.0, torch.Generator().manual_seed(1))
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert torch.equal(drawn_epoch(x, 0.0, 0.3, 15.0, torch.Generator().manual_seed(0)), x)


def test_with_drawn_off_no_drawing_is_made_and_ids_stay(monkeypatch, fmnist):
    assert RecipeSpec().drawn == 0.0
    assert not any(k.startswith("recipe.drawn") for k in preset("recipe-scratch").spec.differences())
    assert preset("reference-scratch").spec.run_id == RunSpec(kind="classifier", name="reference-scratch",
                                                               init_seed_offset=1).run_id

    def boom(*a, **k):
        raise AssertionError("drawn_epoch called with the recipe's drawn = 0")
    monkeypatch.setattr(train_mod, "drawn_epoch", boom)
    model = build(RunSpec(kind="classifier"))
    opt = torch.optim.Adam(model.parameters())
    train_one_epoch(model, opt, fmnist.train_images[:200], fmnist.train_labels[:200].long(), 100, 0, 1,
                    recipe=RecipeSpec(translate=2))


def test_each_epoch_draws_anew(monkeypatch, fmnist):
    seen = []
    real = train_mod.drawn_epoch

    def spy(x, share, outline, rotate, generator):
        out = real(x, share, outline, rotate, generator)
        seen.append(out.clone())
        return out
    monkeypatch.setattr(train_mod, "drawn_epoch", spy)
    model = build(RunSpec(kind="classifier"))
    opt = torch.optim.Adam(model.parameters())
    x, y = fmnist.train_images[:100], fmnist.train_labels[:100].long()
    for epoch in (1, 2, 1):
        train_one_epoch(model, opt, x, y, 100, 0, epoch, recipe=RecipeSpec(drawn=0.5))
    assert not torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[2])


def test_recipe_fields_are_checked():
    for field, bad in (("recipe.drawn", 1.5), ("recipe.drawn_outline", -0.1), ("recipe.drawn_rotate", 90)):
        with pytest.raises(SpecError, match=field.split(".")[1]):
            RunSpec(kind="classifier").with_overrides({field: bad})
    assert RunSpec().with_overrides({"drawn": 0.25}).recipe.drawn == 0.25


def test_sketch_robust_preset_builds_validates_and_fits_its_budget():
    spec = specs_for("sketch-robust")[-1]
    spec.validate()
    assert spec.name == "sketch-robust" and spec.run_id.startswith("sketch-robust-")
    assert spec.kind == "classifier" and spec.init == "random" and spec.recipe.drawn > 0
    # The reference network: the same size as the classifiers beside it in the app.
    ref = preset("reference-scratch").spec
    assert spec.encoder == ref.encoder and spec.head == ref.head
    assert count_parameters(build(spec)) == count_parameters(build(ref))
    # No more optimizer steps than the reference protocol gives the classifiers beside it.
    steps = lambda s: s.epochs * math.ceil((60_000 - s.val_size) / s.batch_size)  # noqa: E731
    assert steps(spec) <= steps(ref) == 25_000
    # Seeds are separate runs under the same name.
    assert specs_for("sketch-robust", {"seed": 1})[-1].run_id != spec.run_id


def test_a_resumed_drawn_run_equals_an_uninterrupted_one(tmp_path, fmnist):
    spec = tiny_specs(epochs=2, drawn=0.5, hflip=True)["scratch"]
    whole, resumed, store = whole_and_resumed(spec, fmnist, tmp_path)
    for a, b in zip(whole["history"], resumed["history"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
