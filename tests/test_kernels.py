"""The fused CPU kernels compute what PyTorch's operators compute, and the models fall back cleanly."""
import pytest
import torch
import torch.nn.functional as F

from fmnist_core import kernels
from fmnist_core.presets import reference_specs
from fmnist_core.models import Classifier, Dropout

needs_kernels = pytest.mark.skipif(not kernels.available(), reason=f"{kernels.reason()}")


def _images(n: int, seed: int = 0) -> torch.Tensor:
    """Garment-like inputs in [-1, 1]: a constant background (ties in every pooling window) and a
    random blob, so both the tie rule and ordinary maxima are exercised."""
    g = torch.Generator().manual_seed(seed)
    x = -torch.ones(n, 1, 28, 28)
    x[:, :, 6:22, 8:20] = torch.rand(n, 1, 16, 12, generator=g) * 2 - 1
    return x


def _torch_first_block(x, w, b):
    return F.relu(F.max_pool2d(F.conv2d(x, w, b, padding=1), 2))


@needs_kernels
@pytest.mark.parametrize("channels", [16, 32])
@pytest.mark.parametrize("n", [1, 37])
def test_first_block_matches_conv_pool_relu_and_its_gradients(channels, n):
    torch.manual_seed(channels + n)
    x = _images(n)
    w = (torch.randn(channels, 1, 3, 3) * 0.5).requires_grad_()
    b = (torch.randn(channels) * 0.1).requires_grad_()
    assert kernels.first_block_supported(x, w)
    ref, out = _torch_first_block(x, w, b), kernels.first_block(x, w, b)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, ref, atol=1e-5)
    g = torch.randn_like(ref)
    gw_ref, gb_ref = torch.autograd.grad((ref * g).sum(), (w, b))
    gw, gb = torch.autograd.grad((out * g).sum(), (w, b))
    assert torch.allclose(gw, gw_ref, rtol=1e-4, atol=1e-3)
    assert torch.allclose(gb, gb_ref, rtol=1e-4, atol=1e-3)


@needs_kernels
def test_first_block_is_skipped_where_it_does_not_apply():
    w16 = torch.randn(16, 1, 3, 3)
    assert not kernels.first_block_supported(torch.zeros(2, 1, 28, 28, requires_grad=True), w16)  # input grad
    assert not kernels.first_block_supported(torch.zeros(2, 3, 28, 28), torch.randn(16, 3, 3, 3))  # colour
    assert not kernels.first_block_supported(torch.zeros(2, 1, 28, 28), torch.randn(24, 1, 3, 3))  # 24 % 16
    assert not kernels.first_block_supported(torch.zeros(2, 1, 27, 27), w16)                       # odd size
    assert not kernels.first_block_supported(torch.zeros(2, 1, 28, 28, dtype=torch.float64), w16.double())
    with kernels.disabled():
        assert not kernels.first_block_supported(torch.zeros(2, 1, 28, 28), w16)


@needs_kernels
def test_classifier_gives_the_same_outputs_and_gradients_with_and_without_kernels():
    torch.manual_seed(0)
    model = Classifier(reference_specs()["scratch"]).to(memory_format=torch.channels_last)
    x = _images(20).contiguous(memory_format=torch.channels_last)
    y = torch.arange(20) % 10

    def run():
        model.zero_grad()
        model.eval()
        logits = model(x)
        F.cross_entropy(logits, y).backward()                  # eval mode: no dropout, same function
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    fused_logits, fused_grads = run()
    with kernels.disabled():
        torch_logits, torch_grads = run()
    assert torch.allclose(fused_logits, torch_logits, atol=1e-5)
    for a, b in zip(fused_grads, torch_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "pytorch"])
def test_dropout_drops_the_right_share_repeatably_and_passes_gradients(fused):
    if fused and not kernels.available():
        pytest.skip(kernels.reason())
    drop = Dropout(0.2).train()
    x = torch.ones(100, 32, 14, 14).contiguous(memory_format=torch.channels_last).requires_grad_()
    with (torch.enable_grad() if fused else kernels.disabled()):
        torch.manual_seed(0)
        y = drop(x)
        assert abs((y == 0).float().mean().item() - 0.2) < 0.005
        assert set(y.unique().tolist()) == {0.0, 1.25}              # kept values scaled by 1 / (1 - p)
        assert y.is_contiguous(memory_format=torch.channels_last)
        per_channel = (y == 0).float().mean((0, 2, 3))
        assert per_channel.min() > 0.17 and per_channel.max() < 0.23  # no lane or layout bias
        per_row = (y == 0).float().mean((0, 1, 3))
        assert per_row.min() > 0.17 and per_row.max() < 0.23
        y.sum().backward()
        assert torch.equal(x.grad, y.detach())                      # d(x * mask)/dx = mask
        torch.manual_seed(0)
        assert torch.equal(drop(x), y)                              # seeded: repeatable, resumable
        torch.manual_seed(1)
        assert not torch.equal(drop(x), y)
        assert torch.equal(drop.eval()(x), x)


@needs_kernels
def test_dropout_masks_of_neighbouring_elements_are_independent():
    torch.manual_seed(0)
    keep = (kernels.dropout(torch.ones(1_000_000), 0.2) != 0).float()
    # Elements share a random word in fours: pairs inside a word and across words must both be
    # uncorrelated (correlation of independent Bernoulli(0.8) masks: 0 +- ~0.001 here).
    for lag in (1, 2, 3, 4, 5):
        a, b = keep[:-lag], keep[lag:]
        corr = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
        assert abs(corr.item()) < 0.005, lag


def test_without_a_compiler_the_models_use_pytorch(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # nothing built there yet
    kernels._reset_for_tests()
    try:
        assert not kernels.available()
        assert "no-such-compiler" in kernels.reason() or "No such file" in kernels.reason()
        model = Classifier(reference_specs()["scratch"]).train()
        out = model(_images(4))
        out.sum().backward()
        assert out.shape == (4, 10) and model.encoder.net[0].weight.grad is not None
    finally:
        monkeypatch.undo()
        kernels._reset_for_tests()


def test_kernels_can_be_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("FMNIST_KERNELS", "0")
    kernels._reset_for_tests()
    try:
        assert not kernels.available() and "FMNIST_KERNELS=0" in kernels.reason()
    finally:
        monkeypatch.undo()
        kernels._reset_for_tests()


def test_the_worker_pool_is_made_once_and_serves_calls_from_many_threads(monkeypatch):
    """Four threads ask for a pool that does not exist yet, at the same moment, while making one takes
    a while: one pool is made and shared. Ranges beyond its threads wait their turn."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    made = []

    def slow_pool(*a, **k):                   # widens the window in which an unlocked check would race
        time.sleep(0.05)
        made.append(ThreadPoolExecutor(*a, **k))
        return made[-1]

    monkeypatch.setattr(kernels, "_pool", None)
    monkeypatch.setattr(kernels, "ThreadPoolExecutor", slow_pool)
    out = [0] * 64
    barrier = threading.Barrier(4)

    def fill(lo, hi, offset):
        for i in range(lo, hi):
            out[i] = i + offset

    def caller(k):
        barrier.wait()                         # four threads ask for the pool at the same moment
        ranges = [(a, a + 4) for a in range(16 * k, 16 * k + 16, 4)]
        kernels._parallel(lambda off, lo, hi: fill(lo, hi, off), ranges, [(100,)] * len(ranges))
        return kernels._worker_pool()

    try:
        with ThreadPoolExecutor(4) as callers:
            pools = list(callers.map(caller, range(4)))
        assert out == [i + 100 for i in range(64)]
        assert made == [pools[0]] and all(p is pools[0] for p in pools)
    finally:
        for p in made:
            p.shutdown()
