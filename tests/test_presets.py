"""Every preset builds, and its layer shapes are the ones its document lists."""
import pytest

from fmnist_core.models import build, count_parameters, layer_shapes
from fmnist_core.presets import PRESETS, preset, reference_runs, reference_specs, specs_for
from fmnist_core.spec import SpecError


def _shapes(name: str) -> list[tuple[int, ...]]:
    spec = PRESETS[name].spec
    if spec.init == "pretrained":
        spec = spec.replace(pretrained_from="an-autoencoder")
    spec.validate()
    return [s for _, s in layer_shapes(spec)]


def _has_in_order(shapes, expected) -> bool:
    """`expected` appear in `shapes` in this order (other layers may come between)."""
    it = iter(shapes)
    return all(any(s == e for s in it) for e in expected)


# Shapes (C, H, W) as the documents list them, in order.
DOCUMENTED = {
    "reference-autoencoder": [(32, 14, 14), (64, 7, 7), (64, 7, 7), (64, 14, 14), (32, 28, 28), (1, 28, 28)],
    "reference-scratch": [(64, 7, 7), (3136,), (128,), (10,)],
    # 2025 report, Tables I-III
    "r2025-arch1": [(16, 28, 28), (16, 14, 14), (1, 28, 28)],
    "r2025-arch1-linear": [(16, 14, 14), (3136,), (256,), (3136,), (16, 14, 14), (1, 28, 28)],
    "r2025-arch2": [(16, 28, 28), (16, 14, 14), (32, 14, 14), (32, 7, 7), (16, 14, 14), (1, 28, 28)],
    "r2025-arch2-linear": [(16, 14, 14), (32, 7, 7), (1568,), (256,), (1568,), (32, 7, 7), (16, 14, 14), (1, 28, 28)],
    "r2025-arch3": [(16, 28, 28), (16, 14, 14), (32, 7, 7), (64, 7, 7), (64, 4, 4), (32, 7, 7), (16, 14, 14), (1, 28, 28)],
    "r2025-arch3-linear": [(64, 4, 4), (1024,), (256,), (1024,), (64, 4, 4), (32, 7, 7), (16, 14, 14), (1, 28, 28)],
    "r2025-scratch": [(32, 7, 7), (1568,), (128,), (64,), (10,)],
    # 2024 report, section II
    "r2024-autoencoder": [(16, 26, 26), (16, 13, 13), (32, 11, 11), (32, 5, 5), (800,), (64,), (800,), (32, 5, 5),
                          (16, 13, 13), (1, 28, 28)],
    "r2024-finetune": [(32, 5, 5), (64,), (10,)],
    # course tutorial, exercise 5
    "tutorial-autoencoder": [(16, 26, 26), (16, 13, 13), (2704,), (128,), (2704,), (16, 13, 13), (1, 28, 28)],
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_runs(name):
    shapes = _shapes(name)
    assert shapes[-1] == ((1, 28, 28) if PRESETS[name].spec.kind == "autoencoder" else (10,))
    assert PRESETS[name].source


@pytest.mark.parametrize("name", list(DOCUMENTED))
def test_preset_shapes_match_the_document(name):
    shapes = _shapes(name)
    assert _has_in_order(shapes, DOCUMENTED[name]), shapes


def test_output_activations_and_scaling_follow_the_documents():
    assert PRESETS["reference-autoencoder"].spec.decoder.output == "tanh"
    for name in ("r2025-arch1", "r2025-arch2", "r2025-arch3", "r2024-autoencoder"):
        assert PRESETS[name].spec.decoder.output == "sigmoid"
    # The 2025 reading: [-1, 1] targets scored against a Sigmoid (see presets.py); the 2024 one: [0, 1].
    assert PRESETS["r2025-arch2"].spec.target_range == "signed"
    assert PRESETS["r2024-autoencoder"].spec.target_range == "unit"
    assert PRESETS["r2024-finetune"].spec.head.final_relu
    assert count_parameters(build(PRESETS["reference-finetune"].spec.replace(pretrained_from="x"))) == 458_570


def test_a_pretrained_classifier_comes_after_its_autoencoder_with_the_shared_overrides():
    ae, clf = specs_for("r2025-frozen_pretrained", {"epochs": 3, "subset": 1200, "lr": 1e-4})
    assert ae.kind == "autoencoder" and ae.name == "r2025-arch2"
    assert (ae.epochs, ae.subset, ae.optimizer.lr) == (3, 1200, 1e-3)        # lr is the classifier's alone
    assert (clf.epochs, clf.subset, clf.optimizer.lr) == (3, 1200, 1e-4)
    assert clf.pretrained_from == ae.run_id and clf.frozen
    assert [s.name for s in specs_for("r2025-scratch")] == ["r2025-scratch"]


def test_unknown_preset_is_named():
    with pytest.raises(SpecError, match="unknown preset 'nope'.*reference-autoencoder"):
        preset("nope")


def test_reference_runs_of_the_shipped_store_are_the_shipped_runs():
    from fmnist_core.runs import DEFAULT_DIR, RunStore
    from shipped_expected import REFERENCE_IDS
    # Exact ids: a drifted reference spec would fall back to another shipped run of the same name.
    assert reference_runs(RunStore(DEFAULT_DIR)) == REFERENCE_IDS
    assert {k: s.run_id for k, s in reference_specs().items()} == REFERENCE_IDS     # the specs themselves
