import torch

from fmnist_core.config import CLASSIFIERS, ModelConfig
from fmnist_core.models import Autoencoder, Classifier, count_parameters, make_classifier


def test_shapes_and_parameter_count():
    cfg = ModelConfig()
    x = torch.randn(5, 1, 28, 28)
    ae = Autoencoder(cfg)
    z = ae.encoder(x)
    assert z.shape == (5, 64, 7, 7) == (5, *cfg.latent_shape)
    out = ae(x)
    assert out.shape == x.shape
    assert out.min() >= -1 and out.max() <= 1          # Tanh output matches the [-1, 1] scaling
    clf = Classifier(cfg)
    assert clf(x).shape == (5, 10)
    assert count_parameters(clf) == 458_570


def test_schemes_start_from_the_right_encoder_and_freeze_it():
    cfg = ModelConfig()
    ae = Autoencoder(cfg)
    enc_state = ae.encoder.state_dict()
    for name in CLASSIFIERS:
        model = make_classifier(name, cfg, enc_state)
        pretrained = name in ("finetune", "frozen_pretrained")
        frozen = name.startswith("frozen")
        same = all(torch.equal(model.encoder.state_dict()[k], v) for k, v in enc_state.items())
        assert same == pretrained, name
        trainable = count_parameters(model, trainable_only=True)
        assert trainable == (458_570 - 55_744 if frozen else 458_570), name


def test_frozen_encoder_gets_no_gradient():
    model = make_classifier("frozen_random", ModelConfig(), None)
    model.train()
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.head.parameters() if p.requires_grad)


def _reference_encoder(cfg: ModelConfig) -> torch.nn.Sequential:
    """The reference's layer order (Conv -> ReLU -> MaxPool -> Dropout), with torch's own Dropout."""
    from torch import nn
    c1, c2, c3 = cfg.channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(cfg.dropout),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(cfg.dropout),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU())


def test_encoder_computes_the_reference_layer_order():
    cfg = ModelConfig()
    ours = Autoencoder(cfg).encoder
    ref = _reference_encoder(cfg)
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

