"""Where a training step and an evaluation batch spend their time, and what the tried options gain.

    .venv/bin/python benchmarks/profile_training.py [--model finetune] [--kernels] [--variants] [--compile]

Prints, on the real data (our loop, as `train` runs it):
  - an evaluation batch (1,000 images) layer by layer, wall-clock ms and GFLOP/s of each layer, and
    the fused first block (kernels.first_block) that the model runs instead of the first three;
  - a training step (batch 100) by operator and input shape from torch.profiler, in ms per step,
    beside the step's unprofiled time (the profiler inflates some operators: on this machine the
    first convolution shows several times its wall-clock time);
  - with --kernels, training and evaluation images/s with the fused CPU kernels and with PyTorch's
    operators, in alternating rounds;
  - with --variants, training images/s with Adam's default loop, `foreach` and `fused`
    (what train.make_optimizer chose), each timed twice in alternation;
  - with --compile, torch.compile's compile time and its training images/s (needs a C++ compiler).
Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_core import RunSpec, kernels, load_fashion_mnist, split  # noqa: E402
from benchmarks.harness import _bench_model, layer_macs, matmul_peak  # noqa: E402
from fmnist_core.presets import SCHEMES, reference_specs  # noqa: E402
from fmnist_core import train  # noqa: E402
from fmnist_core.train import evaluate_split  # noqa: E402


def _model(name: str) -> torch.nn.Module:
    return train._prepare(_bench_model(name, None, seed=1), torch.device("cpu"))


def op_table(fn, repeats: int, rows: int = 14) -> str:
    """The top operators of `fn` by self time (torch.profiler), ms per call of `fn`."""
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    wall_ms = (time.perf_counter() - t0) / repeats * 1e3
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(repeats):
            fn()
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    lines = [f"{'ms':>7} {'share':>6}  operator, input shapes"]
    for e in events[:rows]:
        shapes = ", ".join(str(s) for s in e.input_shapes[:2] if s)
        lines.append(f"{e.self_cpu_time_total / 1e3 / repeats:7.2f} {100 * e.self_cpu_time_total / total:5.1f}%"
                     f"  {e.key} {shapes}")
    lines.append(f"{total / 1e3 / repeats:7.2f} ms per call profiled; {wall_ms:.2f} ms unprofiled")
    return "\n".join(lines)


@torch.inference_mode()
def layer_table(model: torch.nn.Module, xb: torch.Tensor, repeats: int = 20) -> str:
    """Wall-clock ms of each layer of the classifier's forward pass on `xb`, with GFLOP/s."""
    layers = list(model.encoder.net) + list(model.head)
    macs = {name: m for name, m, _ in layer_macs(model)}
    names = {module: name for name, module in model.named_modules()}
    lines = [f"{'ms':>7}  layer"]
    h, total = xb, 0.0
    for layer in layers:
        for _ in range(3):
            out = layer(h)
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = layer(h)
        ms = (time.perf_counter() - t0) / repeats * 1e3
        total += ms
        mac = macs.get(names[layer])
        rate = f"  ({2 * mac * len(xb) / (ms / 1e3) / 1e9:.0f} GFLOP/s)" if mac else ""
        lines.append(f"{ms:7.2f}  {names[layer]} {layer}{rate}")
        h = out
    lines.append(f"{total:7.2f} ms in all, PyTorch's operators layer by layer")
    conv = model.encoder.net[0]
    if kernels.first_block_supported(xb, conv.weight):
        for _ in range(3):
            kernels.first_block(xb, conv.weight, conv.bias)
        t0 = time.perf_counter()
        for _ in range(repeats):
            kernels.first_block(xb, conv.weight, conv.bias)
        ms = (time.perf_counter() - t0) / repeats * 1e3
        lines.append(f"{ms:7.2f}  encoder.net.0-2 as the fused kernel (kernels.first_block), as the model runs it")
    return "\n".join(lines)


AB_ROUNDS = 6


def kernels_ab(name: str, cfg: RunSpec, x: torch.Tensor, y: torch.Tensor, rounds: int = AB_ROUNDS) -> str:
    """Training and evaluation images/s with the fused kernels and with PyTorch's operators.

    The two alternate, round by round, in one process: this VM's speed drifts by tens of percent
    from minute to minute, and alternating lets both see the same drift. Medians and ranges.
    """
    rates: dict[tuple[str, str], list[float]] = {}
    torch.manual_seed(1)
    model = _model(name)
    optimizer = train.make_optimizer(model, cfg.optimizer)
    for _ in range(rounds):
        for label in ("fused", "pytorch"):
            with (contextlib.nullcontext() if label == "fused" else kernels.disabled()):
                rates.setdefault(("train", label), []).append(train_rate(model, optimizer, x, y, images=2000))
                evaluate_split(model, x[:1000], y[:1000])                              # warm-up
                t0 = time.perf_counter()
                evaluate_split(model, x[:5000], y[:5000])
                rates.setdefault(("eval", label), []).append(5000 / (time.perf_counter() - t0))
    lines = []
    for phase in ("train", "eval"):
        f, t = (statistics.median(rates[(phase, k)]) for k in ("fused", "pytorch"))
        spread = lambda k: f"{min(rates[(phase, k)]):.0f}-{max(rates[(phase, k)]):.0f}"  # noqa: E731
        lines.append(f"  {phase:>5}: fused {f:.0f} images/s ({spread('fused')}), PyTorch's operators "
                     f"{t:.0f} ({spread('pytorch')}): {f / t:.2f}x")
    return "\n".join(lines)


def train_rate(model, optimizer, x, y, images: int = 6000) -> float:
    train.train_one_epoch(model, optimizer, x[images:images + 1000], y[images:images + 1000], 100, 0, 0)
    t0 = time.perf_counter()
    train.train_one_epoch(model, optimizer, x[:images], y[:images], 100, 0, 1)
    return images / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="finetune", choices=SCHEMES)
    p.add_argument("--variants", action="store_true", help="time Adam's three implementations")
    p.add_argument("--kernels", action="store_true", help="time the fused CPU kernels against PyTorch's operators")
    p.add_argument("--compile", action="store_true", help="time torch.compile of the model")
    p.add_argument("--data", default=None)
    args = p.parse_args(argv)

    train.tune_cpu_allocator()
    cfg = reference_specs()[args.model]
    data = split(load_fashion_mnist(args.data), cfg.val_size, None, cfg.split_seed)
    x, y = data.train_x[:8000], data.train_y[:8000]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}")

    model = _model(args.model)
    optimizer = train.make_optimizer(model, cfg.optimizer)
    batches = iter(range(10**9))

    def step():
        # One batch of 100 through train_one_epoch itself (its shuffle and seeding of 100 images
        # add microseconds to a step of ~25 ms), cycling over the first 7,000 images.
        a = next(batches) % 70 * cfg.batch_size
        train.train_one_epoch(model, optimizer, x[a:a + cfg.batch_size], y[a:a + cfg.batch_size],
                              cfg.batch_size, cfg.seed, 1)

    print(f"measured float32 matmul peak: {matmul_peak(torch.device('cpu'))['peak_gflops']:.0f} GFLOP/s")
    model.eval()
    print("\nevaluation batch, 1,000 images, layer by layer:\n" + layer_table(model, train._batch(x[:1000], cfg.input_range)))
    print("\ntraining step, batch 100, by operator:\n" + op_table(step, 30))

    if args.kernels:
        if kernels.available():
            print(f"\nfused CPU kernels against PyTorch's operators, {AB_ROUNDS} alternating rounds (medians):")
            print(kernels_ab(args.model, cfg, x, y))
        else:
            print(f"\nfused CPU kernels: {kernels.reason()}")
    if args.variants:
        print("\nAdam, training images/s (two rounds):")
        for round_ in (1, 2):
            for label, kw in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
                torch.manual_seed(1)
                m = _model(args.model)
                opt = torch.optim.Adam([q for q in m.parameters() if q.requires_grad], lr=cfg.optimizer.lr, **kw)
                print(f"  round {round_} {label:>8}: {train_rate(m, opt, x, y):.0f}", flush=True)
    if args.compile:
        torch.manual_seed(1)
        m = _model(args.model)
        compiled = torch.compile(m)
        opt = train.make_optimizer(m, cfg.optimizer)
        t0 = time.perf_counter()
        train.train_one_epoch(compiled, opt, x[:100], y[:100], 100, 0, 0)
        print(f"\ntorch.compile: first step (compiling) {time.perf_counter() - t0:.1f} s")
        print(f"torch.compile: {train_rate(compiled, opt, x, y):.0f} training images/s; "
              f"eager: {train_rate(m, train.make_optimizer(m, cfg.optimizer), x, y):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
