"""Networks built from specs: the reference network's shapes, parameters and layer order; the schemes."""
import torch

from fmnist_core.models import Autoencoder, build, count_parameters, make_model
from fmnist_core.presets import SCHEMES, reference_specs

SPECS = reference_specs()


def test_shapes_and_parameter_count():
    x = torch.randn(5, 1, 28, 28)
    ae = Autoencoder(SPECS["autoencoder"])
    z = ae.encoder(x)
    assert z.shape == (5, 64, 7, 7)
    out = ae(x)
    assert out.shape == x.shape
    assert out.min() >= -1 and out.max() <= 1          # Tanh output matches the [-1, 1] scaling
    clf = build(SPECS["scratch"])
    assert clf(x).shape == (5, 10)
    assert count_parameters(clf) == 458_570


def test_schemes_start_from_the_right_encoder_and_freeze_it():
    ae = Autoencoder(SPECS["autoencoder"])
    enc_state = ae.encoder.state_dict()
    for name in SCHEMES:
        model = make_model(SPECS[name], enc_state)
        pretrained = name in ("finetune", "frozen_pretrained")
        frozen = name.startswith("frozen")
        same = all(torch.equal(model.encoder.state_dict()[k], v) for k, v in enc_state.items())
        assert same == pretrained, name
        trainable = count_parameters(model, trainable_only=True)
        assert trainable == (458_570 - 55_744 if frozen else 458_570), name


def test_a_pretrained_scheme_without_its_encoder_is_refused():
    import pytest
    with pytest.raises(ValueError, match="train that first"):
        make_model(SPECS["finetune"], None)


def test_frozen_encoder_gets_no_gradient():
    model = make_model(SPECS["frozen_random"])
    model.train()
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters() if p.requires_grad)


def _reference_encoder(p: float) -> torch.nn.Sequential:
    """The reference's layer order (Conv -> ReLU -> MaxPool -> Dropout), with torch's own Dropout."""
    from torch import nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU())


def test_encoder_computes_the_reference_layer_order():
    ours = Autoencoder(SPECS["autoencoder"]).encoder
    ref = _reference_encoder(0.2)
    ref.load_state_dict(ours.net.state_dict())          # same parameter names: net.0, net.4, net.8
    ours.eval(), ref.eval()
    x = torch.randn(8, 1, 28, 28, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = ours(x), ref(x_ref)
    assert torch.allclose(out, out_ref, atol=1e-6)
    g = torch.randn_like(out)
    out.backward(g), out_ref.backward(g)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-5)
    for p, q in zip(ours.parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4)


def test_a_run_starts_from_the_initial_weights_the_shipped_runs_started_from(trained_store, tiny_ids):
    """Seeding and construction order decide the initial weights. A frozen random encoder keeps them:
    the tiny run trained here (same seed, other size) holds the shipped run's encoder, bit for bit."""
    from fmnist_core.runs import DEFAULT_DIR, RunStore
    shipped = RunStore(DEFAULT_DIR).read_file(SPECS["frozen_random"].run_id, "last")
    ours = trained_store.read_file(tiny_ids["frozen_random"], "last")
    encoder = [k for k in shipped if k.startswith("encoder.")]
    assert len(encoder) == 6 and all(torch.equal(ours[k], shipped[k]) for k in encoder)


def test_the_same_seed_builds_the_same_initial_weights_in_every_scheme():
    """Construction order decides the initial weights: Encoder then head, layer by layer."""
    torch.manual_seed(2)
    a = build(SPECS["finetune"]).state_dict()
    torch.manual_seed(2)
    b = build(SPECS["scratch"]).state_dict()
    assert list(a) == ["encoder.net.0.weight", "encoder.net.0.bias", "encoder.net.4.weight", "encoder.net.4.bias",
                       "encoder.net.8.weight", "encoder.net.8.bias", "head.1.weight", "head.1.bias",
                       "head.4.weight", "head.4.bias"]
    assert all(torch.equal(a[k], b[k]) for k in a)
