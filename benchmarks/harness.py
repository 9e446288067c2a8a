"""Time our training loop against the reference tutorial loop, on the same machine in one run.

`python -m fmnist_core bench` (or `benchmarks/bench_training.py`, which also writes the result file)
measures, per classifier scheme:

* the reference loop: torchvision's FashionMNIST with per-sample ToTensor + Normalize, DataLoader
  batches of 100 (shuffled for training), the study's model built from torch's own layers
  (`_tutorial_model`), the tutorial's train_epoch and evaluate functions;
* our loop: `train.train_one_epoch` and `train.evaluate_split` on the split kept as device tensors,
  with our models (channels-last, reordered pooling, fused CPU kernels where they build);
* the machine's float32 matrix-multiply peak, and the share of it our training reaches.

Both loops time the same numbers of images: `batches` training batches of 100 and 1.4 times as
many evaluated images (a full epoch trains 50,000 images and then evaluates the 50,000 training,
10,000 validation and 10,000 test images), split across the three sets in the same 5:1:1
proportion. Each loop gets a warm-up of a few batches first. Both are timed in pieces (1,000
training images; 1,000 evaluated images or one of our evaluation batches if larger), the rate is
that of the median piece (weighted by size), and both are extrapolated to a full epoch the same
way: seconds = epoch images / images per second. The rate from the total time is reported beside
it; where the two part, or the machine's CPU counters show other processes at work meanwhile, the
result says `machine_looked_busy` (another process on one of the cores stalls every
multi-threaded step many times over, so run it on an otherwise idle machine).

Every reference measurement runs before ours, because ours first tunes the process's allocator
the way training does (`train.tune_cpu_allocator`), which a tutorial script would not.

The pretrained schemes are timed with a randomly initialised encoder in place of the autoencoder's:
the arithmetic is identical, and the benchmark then needs no trained checkpoint.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fmnist_core import kernels
from fmnist_core.presets import SCHEMES as CLASSIFIERS, reference_specs
from fmnist_core.spec import RunSpec
from fmnist_core.precision import check as check_precision, cpu_bf16_units, cpu_name
from fmnist_core.data import FILES, _find_file, load_fashion_mnist, split
from fmnist_core import train as train_module
from fmnist_core.models import Encoder, make_model
from fmnist_core.train import (EVAL_BATCH, _device_name, _prepare, evaluate_split, frozen_features, make_optimizer,
                               resolve_device, train_one_epoch, tune_cpu_allocator)

REFERENCE_BATCH = 100
WARMUP_BATCHES = 3
PIECE_BATCHES = 10           # timed pieces of 1,000 training images; the median piece counts


# ----------------------------------------------------------------------------- arithmetic

def layer_macs(model: nn.Module, image_shape: tuple[int, ...] = (1, 28, 28)) -> list[tuple[str, int, bool]]:
    """(layer name, multiply-accumulates per image, trained?) for every Conv2d/Linear, from shapes."""
    names = {m: n for n, m in model.named_modules()}
    rows: list[tuple[str, int, bool]] = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_out = module.in_channels // module.groups * kh * kw
            macs = output[0].numel() * per_out
        else:
            macs = module.in_features * module.out_features
        rows.append((names[module], macs, module.weight.requires_grad))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), kernels.disabled():          # a fused kernel would bypass the Conv2d's hook
            p = next(model.parameters())
            model(torch.zeros((1, *image_shape), device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def flops_per_image(model: nn.Module) -> dict[str, float]:
    """Forward FLOPs = 2 x MACs; training adds a backward of about 2 x forward for trained layers.

    A frozen encoder runs forward only while training (no gradient is needed in front of the head).
    """
    rows = layer_macs(model)
    forward = sum(2 * macs for _, macs, _ in rows)
    train = sum(2 * macs * (3 if trained else 1) for _, macs, trained in rows)
    return {"train": float(train), "eval": float(forward)}


def _best_gflops(fn, flop: float, device: torch.device, repeats: int) -> float:
    fn()                                          # warm-up
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9


def matmul_peak(device: torch.device, n: int | None = None, repeats: int = 10,
                dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n @ n x n product (2 n^3 FLOPs), two ways.

    `mm_gflops`: torch.mm (MKL's sgemm on CPU, cuBLAS on CUDA). `onednn_gflops` (CPU only): a
    product of the same size run as a 1x1 convolution by oneDNN, the library that runs our
    convolutions. On AMD CPUs MKL takes a slower code path than oneDNN (on the 2-core CI machine
    about 220 against 450 GFLOP/s). The peak is the higher of the two, so a slow BLAS does not
    flatter the share of peak.
    """
    n = n or (8192 if device.type == "cuda" else 2048)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    flop = 2.0 * n ** 3
    result = {"mm_gflops": _best_gflops(lambda: torch.mm(a, b, out=out), flop, device, repeats)}
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        # n input channels at n positions, channels innermost (oneDNN's own layout: no reorder)
        x = a.reshape(1, n, n, 1).contiguous(memory_format=torch.channels_last)
        w = b.reshape(n, n, 1, 1)                 # n output channels x n input channels
        with torch.no_grad():
            result["onednn_gflops"] = _best_gflops(lambda: F.conv2d(x, w), flop, device, repeats)
    result["peak_gflops"] = max(result.values())
    return result


def _cpu_clock() -> tuple[float, float, float] | None:
    """(wall seconds, busy CPU-seconds of the whole machine, CPU-seconds of this process); Linux only."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)          # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.perf_counter(), (sum(fields[:8]) - idle) / tick, own.user + own.system


def _other_load(start, end) -> float | None:
    """Cores' worth of CPU that other processes used between two _cpu_clock() readings."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    return max(0.0, ((end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- models

def scheme_spec(name: str) -> RunSpec:
    """The reference protocol's spec of scheme `name`."""
    return reference_specs()[name]


def _bench_model(name: str, spec: RunSpec | None, seed: int) -> nn.Module:
    """The reference scheme `name` as training sets it up; a random encoder stands in for a pretrained one."""
    spec = spec or scheme_spec(name)
    torch.manual_seed(seed)
    pretrained = Encoder(spec).state_dict()
    return make_model(spec, pretrained)


# ----------------------------------------------------------------------------- reference loop

def _tutorial_model(name: str, cfg: RunSpec | None, seed: int) -> nn.Module:
    """The scheme as the reference study builds it: torch's own layers in its order (Conv -> ReLU ->
    MaxPool -> Dropout), default memory layout, with the same initial weights as `_bench_model`.

    Ours reorders pooling and ReLU, uses its own Dropout and fused CPU kernels; none of that may
    speed up the loop it is measured against.
    """
    cfg = cfg or scheme_spec(name)
    c1, c2, c3 = (b.channels for b in cfg.encoder.blocks)
    p, hidden = cfg.encoder.dropout, cfg.head.hidden[0]
    model = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(p),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(c3 * 7 * 7, hidden), nn.ReLU(), nn.Dropout(p),
        nn.Linear(hidden, 10))
    ours = _bench_model(name, cfg, seed)
    # Both list their tensors in the same order: conv 1-3 weight and bias, then the two linear layers.
    model.load_state_dict(dict(zip(model.state_dict(), ours.state_dict().values())))
    if ours.frozen_encoder:
        for p in model[:10].parameters():
            p.requires_grad_(False)
    return model


def _torchvision_root(source: str, tmp: Path) -> Path:
    """A torchvision FashionMNIST root holding uncompressed copies of the IDX files found in `source`."""
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in FILES.values():
        path = _find_file(Path(source), stem)
        if path is None:
            raise FileNotFoundError(f"{stem}[.gz] not found in {source}")
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f_in, open(raw / stem, "wb") as f_out:
                shutil.copyfileobj(f_in, f_out)
        else:
            shutil.copyfile(path, raw / stem)
    return tmp


def _eval_pieces(sizes: tuple[int, int, int], piece: int) -> list[tuple[int, int, int]]:
    """(set index, start, stop) slices of at most `piece` images covering the first sizes[s] of each set."""
    return [(s, a, min(a + piece, n)) for s, n in enumerate(sizes) for a in range(0, n, piece)]


def _reference_loaders(root: Path, train_idx: torch.Tensor, val_idx: torch.Tensor,
                       pieces: list[tuple[int, int, int]]):
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    full_train = datasets.FashionMNIST(str(root), train=True, download=False, transform=tf)
    test = datasets.FashionMNIST(str(root), train=False, download=False, transform=tf)
    train_set = Subset(full_train, train_idx.tolist())
    sets = (train_set, Subset(full_train, val_idx.tolist()), test)
    train_loader = DataLoader(train_set, batch_size=REFERENCE_BATCH, shuffle=True)
    eval_loaders = [DataLoader(Subset(sets[s], range(a, b)), batch_size=REFERENCE_BATCH, shuffle=False)
                    for s, a, b in pieces]
    return train_loader, eval_loaders


def _reference_train(model, batches, optimizer, criterion, device, max_batches: int,
                     piece_batches: int, stamps: list[float] | None = None) -> float:
    """The tutorial's train_epoch over the next `max_batches` batches of an iterator; with `stamps`,
    the clock is read every `piece_batches` batches."""
    model.train()
    running = 0.0
    for b in range(max_batches):
        images, labels = next(batches)
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
        if stamps is not None and ((b + 1) % piece_batches == 0 or b + 1 == max_batches):
            stamps.append(time.perf_counter())
    return running


def _reference_evaluate(model, loader, criterion, device) -> tuple[float, float]:
    """The tutorial's evaluate: mean batch loss and accuracy."""
    model.eval()
    total, correct, n, batches = 0.0, 0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            out = model(images)
            total += criterion(out, labels).item()
            correct += (out.argmax(1) == labels).sum().item()
            n += len(labels)
            batches += 1
    return total / max(batches, 1), correct / max(n, 1)


def _time_reference(name, cfg, lr, device, loaders, n_batches: int, piece_batches: int) -> dict:
    train_loader, eval_loaders = loaders
    model = _tutorial_model(name, cfg, seed=1).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    criterion = nn.CrossEntropyLoss()
    batches = iter(train_loader)
    _reference_train(model, batches, optimizer, criterion, device, WARMUP_BATCHES, piece_batches)   # warm-up
    _reference_evaluate(model, eval_loaders[0], criterion, device)                                 # warm-up
    _sync(device)
    stamps = [time.perf_counter()]
    _reference_train(model, batches, optimizer, criterion, device, n_batches, piece_batches, stamps)
    _sync(device)
    eval_s = []
    for loader in eval_loaders:
        t0 = time.perf_counter()
        _reference_evaluate(model, loader, criterion, device)
        _sync(device)
        eval_s.append(time.perf_counter() - t0)
    return {"train_s": [b - a for a, b in zip(stamps, stamps[1:])], "eval_s": eval_s}


# ----------------------------------------------------------------------------- our loop

def _time_ours(name, cfg, train_cfg: RunSpec, data, n_batches: int, piece_batches: int,
               pieces: list[tuple[int, int, int]], eval_bs: int) -> dict:
    device = data.train_x.device
    model = _prepare(_bench_model(name, cfg, seed=1), device)
    optimizer = make_optimizer(model, train_cfg.optimizer)
    bs = train_cfg.batch_size
    n_train = n_batches * bs
    sets = ((data.train_x, data.train_y), (data.val_x, data.val_y), (data.test_x, data.test_y))
    warm = slice(n_train, n_train + WARMUP_BATCHES * bs)
    train_one_epoch(model, optimizer, data.train_x[warm], data.train_y[warm], bs, train_cfg.seed, 0)
    s, a, b = pieces[0]
    evaluate_split(model, sets[s][0][a:b], sets[s][1][a:b], eval_bs)
    _sync(device)
    train_s = []
    for k, start in enumerate(range(0, n_train, piece_batches * bs)):
        stop = min(start + piece_batches * bs, n_train)
        t0 = time.perf_counter()
        # One call per piece: the same batches as one epoch-long call, plus a shuffle of the piece.
        train_one_epoch(model, optimizer, data.train_x[start:stop], data.train_y[start:stop], bs,
                        train_cfg.seed, k + 1)
        _sync(device)
        train_s.append(time.perf_counter() - t0)
    eval_s = []
    for s, a, b in pieces:
        x, y = sets[s][0][a:b], sets[s][1][a:b]
        # A frozen encoder's features are computed once per run (train.frozen_features) and each
        # epoch runs the head on them: count that one-off pass spread over the protocol's epochs.
        once = 0.0
        features = None
        if model.frozen_encoder:
            t0 = time.perf_counter()
            features = frozen_features(model, x, eval_bs)
            _sync(device)
            once = (time.perf_counter() - t0) / train_cfg.epochs
        t0 = time.perf_counter()
        evaluate_split(model, x, y, eval_bs, features)
        _sync(device)
        eval_s.append(time.perf_counter() - t0 + once)
    return {"train_s": train_s, "eval_s": eval_s}


# ----------------------------------------------------------------------------- driver

def _rate(seconds: list[float], images: list[int]) -> tuple[float, float]:
    """(images/s of the median image, images/s from the total time).

    Pieces are ranked by seconds per image and the one holding the middle image counts (a median
    weighted by piece size). It keeps the figure robust to another process taking a core for a few
    seconds, which stalls every multi-threaded op here; on a quiet machine the two figures agree.
    """
    ranked = sorted((t / n, n) for t, n in zip(seconds, images))
    half, seen = sum(images) / 2, 0
    for per_image, n in ranked:
        seen += n
        if seen >= half:
            break
    return 1 / per_image, sum(images) / sum(seconds)


def _rates(timing: dict, train_pieces: list[int], eval_pieces: list[int], epoch_train: int,
           epoch_eval: int) -> dict:
    train_ips, train_ips_total = _rate(timing["train_s"], train_pieces)
    eval_ips, eval_ips_total = _rate(timing["eval_s"], eval_pieces)
    train_epoch_s = epoch_train / train_ips
    eval_epoch_s = epoch_eval / eval_ips
    return {
        "train_images_per_s": round(train_ips, 1), "eval_images_per_s": round(eval_ips, 1),
        "train_epoch_s": round(train_epoch_s, 2), "eval_epoch_s": round(eval_epoch_s, 2),
        "epoch_s": round(train_epoch_s + eval_epoch_s, 2),
        # From the total timed seconds instead of the median piece; far below the above = a busy machine.
        "train_images_per_s_total": round(train_ips_total, 1), "eval_images_per_s_total": round(eval_ips_total, 1),
        "measured_train_s": round(sum(timing["train_s"]), 3), "measured_eval_s": round(sum(timing["eval_s"]), 3),
    }


def run_benchmark(device: str = "auto", batches: int = 100, models: tuple[str, ...] = ("finetune",),
                  data_dir: str | None = None, reference: bool = True,
                  progress: Callable[[str], None] | None = None, eval_batch_size: int | None = None,
                  precision: str = "fp32") -> dict:
    """Time the reference loop and ours on `batches` training batches per scheme; see the module doc.

    `precision`: our loop's ("bf16": autocast, as a run with that precision trains); the reference
    loop is always the tutorial's float32, and the peak is then the bf16 matmul's.

    `eval_batch_size` overrides our evaluation batch (default: train.EVAL_BATCH, what training uses).
    """
    say = progress or (lambda msg: None)
    models = tuple(models)
    for name in models:
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown classifier {name!r}; expected one of {', '.join(CLASSIFIERS)}")
    if batches < 1:
        raise ValueError(f"--batches must be at least 1, got {batches}")
    dev = resolve_device(device)
    check_precision(precision, dev)
    protocol = reference_specs()["scratch"]
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    say("loading Fashion-MNIST")
    data_set = load_fashion_mnist(data_dir)
    data = split(data_set, protocol.val_size, None, protocol.split_seed, dev)
    epoch_train = len(data.train_x)
    epoch_eval = len(data.train_x) + len(data.val_x) + len(data.test_x)

    bs = protocol.batch_size
    n_train = batches * bs
    if n_train + WARMUP_BATCHES * bs > epoch_train:
        raise ValueError(f"--batches {batches} is more than one epoch holds")
    total_eval = round(n_train * epoch_eval / epoch_train)              # 1.4 x n_train
    n_eval_val = round(total_eval * len(data.val_x) / epoch_eval)
    n_eval_test = round(total_eval * len(data.test_x) / epoch_eval)
    n_eval = (total_eval - n_eval_val - n_eval_test, n_eval_val, n_eval_test)
    train_pieces = [min(PIECE_BATCHES * bs, n_train - a) for a in range(0, n_train, PIECE_BATCHES * bs)]
    eval_bs = eval_batch_size or EVAL_BATCH
    # Evaluation is timed in pieces of one of our evaluation batches (or of 1,000 images where that
    # is smaller), the reference's per piece likewise: same images, its own batches of 100.
    pieces = _eval_pieces(n_eval, max(eval_bs, 1000))
    eval_pieces = [b - a for _, a, b in pieces]

    clock_start = _cpu_clock()
    say(f"measuring the {'bfloat16' if precision == 'bf16' else 'float32'} matmul peak on {dev.type}")
    peak = matmul_peak(dev, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)

    tmp = None
    if reference:
        tmp = tempfile.TemporaryDirectory(prefix="fmnist-bench-")
        tv_root = _torchvision_root(data_set.source, Path(tmp.name))
        # The reference's split holds out the same images as ours (split() draws them this way).
        order = torch.randperm(len(data_set.train_images), generator=torch.Generator().manual_seed(protocol.split_seed))
        val_idx, train_idx = order[:protocol.val_size], order[protocol.val_size:]

    per_model: dict[str, dict] = {name: {"reference": None} for name in models}
    reference_allocator_tuned = train_module._allocator_tuned    # True only where training ran earlier here
    try:
        # Every reference measurement comes first: ours tunes the process's allocator as training does
        # (train.tune_cpu_allocator), which the tutorial loop, in a process of its own, would not have.
        if reference:
            for name in models:
                say(f"{name}: reference loop, {n_train} training + {total_eval} evaluated images")
                loaders = _reference_loaders(tv_root, train_idx, val_idx, pieces)
                ref = _time_reference(name, None, protocol.optimizer.lr, dev, loaders, batches, PIECE_BATCHES)
                per_model[name]["reference"] = _rates(ref, train_pieces, eval_pieces, epoch_train, epoch_eval)
    finally:
        if tmp is not None:
            tmp.cleanup()
    allocator_tuned = tune_cpu_allocator() if dev.type == "cpu" else False
    for name in models:
        entry = per_model[name]
        scheme_model = _bench_model(name, None, seed=1)
        flops = flops_per_image(scheme_model)
        say(f"{name}: our loop ({precision}), {n_train} training + {total_eval} evaluated images")
        ours_spec = scheme_spec(name).replace(precision=precision)
        ours = _rates(_time_ours(name, ours_spec, ours_spec, data, batches, PIECE_BATCHES, pieces, eval_bs),
                      train_pieces, eval_pieces, epoch_train, epoch_eval)
        entry["ours"] = ours
        r = entry["reference"]
        entry["speedup"] = round(r["epoch_s"] / ours["epoch_s"], 2) if r else None
        entry["train_speedup"] = round(ours["train_images_per_s"] / r["train_images_per_s"], 2) if r else None
        entry["eval_speedup"] = round(ours["eval_images_per_s"] / r["eval_images_per_s"], 2) if r else None
        train_gflops = ours["train_images_per_s"] * flops["train"] / 1e9
        eval_gflops = ours["eval_images_per_s"] * flops["eval"] / 1e9
        # Where every layer trains, no work can be skipped: the epoch's counted work at the measured
        # matmul rate says what share of that rate a given speedup over the reference would need
        # (the large convolutions reach a little more than it; the memory-bound layers far less).
        # A frozen encoder's features are computed once per run, so there the count does not apply.
        trains_all = not scheme_model.frozen_encoder
        epoch_s_at_peak = ((epoch_train * flops["train"] + epoch_eval * flops["eval"])
                           / (peak["peak_gflops"] * 1e9)) if trains_all else None
        entry.update(
            train_mflop_per_image=round(flops["train"] / 1e6, 2),
            eval_mflop_per_image=round(flops["eval"] / 1e6, 2),
            train_gflops=round(train_gflops, 1), eval_gflops=round(eval_gflops, 1),
            peak_gflops=round(peak["peak_gflops"], 1), share_of_peak=round(train_gflops / peak["peak_gflops"], 3),
            share_of_mm_peak=round(train_gflops / peak["mm_gflops"], 3),
            eval_share_of_peak=round(eval_gflops / peak["peak_gflops"], 3),
            epoch_s_at_peak=round(epoch_s_at_peak, 2) if trains_all else None,
            epoch_share_of_peak=round(epoch_s_at_peak / ours["epoch_s"], 3) if trains_all else None,
            speedup_at_peak=round(r["epoch_s"] / epoch_s_at_peak, 2) if r and trains_all else None,
            device=_device_name(dev), torch=torch.__version__, threads=torch.get_num_threads(),
        )
        say(f"{name}: " + _line(name, entry))
    other_load = _other_load(clock_start, _cpu_clock())

    # Another process on a core stalls every multi-threaded op here (each waits for the descheduled
    # thread): flag it, from the machine's CPU counters and from pieces far slower than the median.
    busy = (other_load is not None and other_load > 0.15) or any(
        e[k] is not None and e[k][f"{phase}_images_per_s_total"] < 0.8 * e[k][f"{phase}_images_per_s"]
        for e in per_model.values() for k in ("reference", "ours") for phase in ("train", "eval"))
    result = {
        "device": _device_name(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "precision": precision, "cpu_model": cpu_name(), "cpu_bf16_units": list(cpu_bf16_units()),
        **{k: round(v, 1) for k, v in peak.items()},
        "batches": batches, "train_images_timed": n_train, "eval_images_timed": total_eval,
        "epoch_train_images": epoch_train, "epoch_eval_images": epoch_eval,
        "eval_batch_size": eval_bs, "allocator_tuned": allocator_tuned,
        "cpu_kernels": "fused" if kernels.available() else kernels.reason(),
        "reference_allocator_tuned": reference_allocator_tuned if reference else None, "load_average_before": load_before,
        "other_processes_cores": None if other_load is None else round(other_load, 2),
        "machine_looked_busy": busy, "models": per_model,
        "speedup": per_model[models[0]]["speedup"] if models else None,
    }
    try:
        import torchvision
        result["torchvision"] = torchvision.__version__
    except ImportError:
        result["torchvision"] = None
    result["summary"] = _summary(result)
    return result


def _line(name: str, e: dict) -> str:
    o, r = e["ours"], e["reference"]
    s = (f"ours {o['train_images_per_s']:.0f} train img/s, {o['eval_images_per_s']:.0f} eval img/s, "
         f"{o['epoch_s']:.1f} s/epoch")
    if r:
        s += (f"; reference {r['train_images_per_s']:.0f} / {r['eval_images_per_s']:.0f} img/s, "
              f"{r['epoch_s']:.1f} s/epoch; speedup {e['speedup']:.2f}x")
    return s


def _summary(result: dict) -> str:
    peaks = f"torch.mm {result['mm_gflops']:.0f}"
    if "onednn_gflops" in result:
        peaks += f", oneDNN {result['onednn_gflops']:.0f}"
    lines = [f"device: {result['device']}, torch {result['torch']}, our CPU kernels: {result['cpu_kernels']}, "
             f"our precision: {result.get('precision', 'fp32')}",
             f"{'bfloat16' if result.get('precision') == 'bf16' else 'float32'} matmul peak "
             f"{result['peak_gflops']:.0f} GFLOP/s ({peaks})",
             f"timed {result['train_images_timed']} training + {result['eval_images_timed']} evaluated images "
             f"per loop, extrapolated to an epoch of {result['epoch_train_images']} + "
             f"{result['epoch_eval_images']}"]
    for name, e in result["models"].items():
        lines.append(f"{name:>17}: " + _line(name, e))
        lines.append(f"{'':>17}  training {e['train_gflops']:.0f} GFLOP/s ({e['train_mflop_per_image']:.1f} "
                     f"MFLOP/image) = {100 * e['share_of_peak']:.0f}% of peak "
                     f"({100 * e['share_of_mm_peak']:.0f}% of torch.mm's)")
        if e["epoch_s_at_peak"] is None:
            continue
        bound = (f"{'':>17}  whole epoch {100 * e['epoch_share_of_peak']:.0f}% of peak; at 100% it would "
                 f"take {e['epoch_s_at_peak']:.1f} s")
        if e["speedup_at_peak"]:
            bound += f", {e['speedup_at_peak']:.2f}x the reference"
        lines.append(bound)
    if result["machine_looked_busy"]:
        lines.append(f"warning: the machine looked busy (other processes used "
                     f"{result['other_processes_cores']} cores meanwhile, or some pieces ran far slower than "
                     f"the median); rerun on a quiet machine")
    return "\n".join(lines)
