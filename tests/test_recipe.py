"""The recipe: augmentation keeps labels and shapes and repeats under a seed; off, it changes nothing;
an augmented, scheduled run resumes to the same result as an uninterrupted one."""
import hashlib
import json
from pathlib import Path

import pytest
import torch

from fmnist_core import RunStore
from fmnist_core.recipe import augment, lr_factor
from fmnist_core.spec import RecipeSpec
from fmnist_core.train import train_runs

from conftest import tiny_specs, whole_and_resumed

_RECORDED = json.loads((Path(__file__).parent / "data" / "reference-tiny-histories.json").read_text())
GOLDEN = _RECORDED["histories"]
GOLDEN_RNG = _RECORDED["rng_state_sha256_after_epoch"]


def _shifts(img: torch.Tensor, t: int = 2) -> list[torch.Tensor]:
    padded = torch.nn.functional.pad(img, (t, t, t, t))
    return [padded[dy:dy + 28, dx:dx + 28] for dy in range(2 * t + 1) for dx in range(2 * t + 1)]


def test_augmentation_keeps_shapes_and_labels_and_repeats_under_a_seed(fmnist):
    x = fmnist.train_images[:64]
    recipe = RecipeSpec(translate=2, hflip=True)
    a = augment(x, recipe, torch.Generator().manual_seed(3))
    b = augment(x, recipe, torch.Generator().manual_seed(3))
    c = augment(x, recipe, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Each image is itself or its mirror image, shifted by at most 2 px.
    for i in range(16):
        candidates = _shifts(x[i]) + _shifts(x[i].flip(1))
        assert any(torch.equal(a[i], c) for c in candidates), i
    assert a.float().sum() <= x.float().sum() + 1e-6        # shifting only ever drops border ink


def test_flip_only_and_shift_only():
    # Images with ink everywhere (a shift shows as a zero border) and no symmetry (a flip shows).
    x = torch.randint(1, 256, (64, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    flipped = augment(x, RecipeSpec(hflip=True), torch.Generator().manual_seed(0))
    was_flipped = [torch.equal(f, o.flip(1)) for f, o in zip(flipped, x)]
    assert all(torch.equal(f, o) or m for f, o, m in zip(flipped, x, was_flipped))     # mirrored or untouched
    assert 16 < sum(was_flipped) < 48                                   # about half (p = 0.5; seed fixed)
    shifted = augment(x, RecipeSpec(translate=1), torch.Generator().manual_seed(0))
    offsets = []
    for s, o in zip(shifted, x):                                        # exactly one shift by <= 1 px, no flip
        (k,) = [k for k, c in enumerate(_shifts(o, 1)) if torch.equal(s, c)]
        offsets.append(k)
    assert len(set(offsets)) >= 5 and offsets.count(4) < 16            # 9 offsets drawn; 4 is "no shift"


def test_schedules():
    cos = RecipeSpec(schedule="cosine", warmup_epochs=1)
    assert lr_factor(cos, 0, 100, 10) == pytest.approx(0.1) and lr_factor(cos, 9, 100, 10) == 1.0
    assert lr_factor(cos, 99, 100, 10) < 0.01
    one = RecipeSpec(schedule="onecycle")
    assert lr_factor(one, 0, 100, 10) == pytest.approx(1 / 25) and lr_factor(one, 30, 100, 10) == pytest.approx(1.0)
    assert lr_factor(RecipeSpec(), 50, 100, 10) == 1.0


def test_with_the_recipe_off_the_reference_runs_train_exactly_as_before(tmp_path, fmnist):
    """Histories recorded before the recipe fields existed (tests/data), reproduced on any CPU.

    Two checks, each of which holds on every CPU of this kind and fails on a real change:
    - the random draws are exact: a digest of torch's generator state at each epoch's end, which
      depends only on which draws the loop made (an extra, missing or reordered draw changes it);
    - the numbers agree to 1e-3 (relative; accuracies to 1 image in 100). Kernels for another
      instruction set round differently: AVX2 against AVX-512 kernels moved these histories by at
      most 6e-6, an Intel Xeon with AMX by 2.5e-5; a changed dropout or layer order moves them by
      percents. An accuracy differs by a whole image or not at all.
    """
    specs = tiny_specs()
    store = RunStore(tmp_path)
    digests: dict[str, list[str]] = {}

    def on_event(event):
        if event["type"] == "epoch":
            state = torch.get_rng_state().numpy().tobytes()
            digests.setdefault(event["run"], []).append(hashlib.sha256(state).hexdigest()[:16])
    train_runs([specs["autoencoder"], specs["scratch"], specs["finetune"]], fmnist, store, callback=on_event)
    for name, golden in GOLDEN.items():
        assert digests[specs[name].run_id] == GOLDEN_RNG[name], name
        history = store.manifest(specs[name].run_id)["history"]
        for ours, theirs in zip(history, golden, strict=True):
            for k, v in theirs.items():
                tolerance = {"abs": 0.01} if k.endswith("_acc") else {"rel": 1e-3}
                assert ours[k] == pytest.approx(v, **tolerance), (name, k, ours[k], v)


def test_a_resumed_augmented_run_equals_an_uninterrupted_one(tmp_path, fmnist):
    spec = tiny_specs(epochs=3, translate=2, hflip=True, label_smoothing=0.1, schedule="cosine",
                      warmup_epochs=1, select="best")["scratch"]
    whole, resumed, store = whole_and_resumed(spec, fmnist, tmp_path)
    for a, b in zip(whole["history"], resumed["history"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    summary = store.summary(spec.run_id)
    assert summary["selected_epoch"] == resumed["best_epoch"]
    assert summary["test_accuracy"] == resumed["history"][resumed["best_epoch"] - 1]["test_acc"]
    # And the recipe changes the run: other numbers than the reference recipe's.
    assert whole["history"][0]["train_loss_running"] != pytest.approx(GOLDEN["scratch"][0]["train_loss_running"])
