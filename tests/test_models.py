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
