"""One training loop for every run: autoencoders and classifiers of any spec.

The data stay on the training device as uint8 tensors; a batch is an index into them, scaled to
the spec's pixel range on the fly. Every epoch records the loss while training, then re-evaluates the training,
validation and test sets in eval mode, and is written to the checkpoint store before the next one
starts, so a run stopped at any moment resumes from its last finished epoch.

Measured (`benchmarks/bench_training.py`, see README): on the 2-core Intel Xeon CI machine a
`finetune` epoch with its evaluations takes 17.2-22.3 s against 60-70 s for the reference tutorial
loop (3.00-3.50x over three runs; training at 36-53% of the measured fp32 matmul peak, which itself
drifts between 250 and 310 GFLOP/s); a frozen scheme's 5.6-6.6 s against 50-58 s (8.7-8.9x).
"""
from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from filelock import Timeout

from . import cudagraph
from .data import FashionMNIST, Split, scale, split
from .drawn import drawn_epoch
from .models import Autoencoder, Classifier, make_model
from .precision import autocast, check as check_precision, cpu_name
from .progress import ProgressFile
from .recipe import augment, augments, lr_factor
from .runs import RunStore, TrainingBusy
from .spec import OptimizerSpec, RecipeSpec, RunSpec
from .store import CheckpointError, optimizer_from_tensors

Callback = Callable[[dict], None]
SEED_LOCK = cudagraph.CAPTURE_LOCK              # runs trained in threads (gpu.py) seed one at a time
EVAL_BATCH = 1000                               # evaluation only; does not change results
SNAPSHOT_EPOCHS = (1, 2, 5, 10, 20, 50)         # autoencoder weights kept for the app (and the last)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    return torch.device(device)


_allocator_tuned = False


def tune_cpu_allocator() -> bool:
    """Make glibc's malloc keep and reuse freed activation buffers; True where it applied.

    By default glibc serves blocks over its mmap threshold (128 KiB, adapting up to 32 MiB) with fresh
    mmap()s and returns the top of the heap after frees, so large activations are page-faulted in
    anew for every batch. On the 2-core CI machine (bench) that held evaluation (batches of 1,000,
    100 MB activations) to ~7,000 images/s instead of ~20,000, and training batches to ~3,400
    images/s instead of ~4,600 until a first evaluation raised glibc's threshold. Raising both
    thresholds keeps the buffers in the heap. It changes where memory comes from, never a number
    computed; process-wide, once; a no-op outside Linux with glibc.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    _allocator_tuned = bool(mallopt(m_mmap_threshold, 1 << 30)) & bool(mallopt(m_trim_threshold, 1 << 30))
    return _allocator_tuned


def _prepare(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    # channels-last makes the small convolutions here markedly faster on CPU and GPU (see bench).
    return model.to(device=device, memory_format=torch.channels_last)


def make_optimizer(model: torch.nn.Module, opt: OptimizerSpec = OptimizerSpec()) -> torch.optim.Optimizer:
    """The spec's optimizer over the parameters that train (a frozen encoder's are left out).

    Adam and AdamW use the fused kernel, the whole update in one pass over each tensor: on the
    2-core CPU training ran 1-6% faster than with the default loop (benchmarks/profile_training.py
    --variants); on CUDA it avoids a kernel launch per operation. The same update rule, so
    checkpoints from either resume with the other. Adam's weight_decay is L2; AdamW's is decoupled.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=opt.lr, weight_decay=opt.weight_decay, fused=True)
    if opt.name == "adamw":
        return torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay, fused=True)
    return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """`optimizer.load_state_dict`, with each moment laid out in memory like its parameter.

    Stored moments come back contiguous while the convolution weights are channels-last; the fused
    kernel walks parameter, gradient and moments as flat arrays, so mismatched layouts would pair
    the wrong elements (tests/test_train checks a resumed run against an uninterrupted one).
    """
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        if group.get("capturable"):
            group["capturable"] = False               # a CUDA-graphed run's state; cudagraph sets it again
    for param, param_state in optimizer.state.items():
        for key, value in param_state.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                param_state[key] = torch.empty_like(param).copy_(value)


def _batch(images_u8: torch.Tensor, pixel_range: str = "signed") -> torch.Tensor:
    return scale(images_u8, pixel_range).contiguous(memory_format=torch.channels_last)


def _ranges(model: torch.nn.Module) -> tuple[str, str]:
    """(input range, autoencoder target range) of a model built from a spec."""
    spec = getattr(model, "spec", None)
    return (spec.input_range, spec.target_range) if spec is not None else ("signed", "signed")


def _precision(model: torch.nn.Module) -> str:
    """The precision of a model built from a spec ("fp32" for any other)."""
    return getattr(getattr(model, "spec", None), "precision", "fp32")


@torch.inference_mode()
def frozen_features(model: Classifier, x_u8: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Eval-mode outputs (N, 3136) of a frozen encoder, flattened as the head takes them.

    They cannot change while only the head trains, so each epoch's evaluation of a frozen scheme runs
    the head on these instead of the whole network: the same numbers for a fraction of the work.
    70,000 images take 0.9 GB in float32.
    """
    was_training = model.training
    model.eval()
    with autocast(_precision(model), x_u8.device):
        out = torch.cat([model.encoder(_batch(x_u8[i:i + batch_size], _ranges(model)[0])).flatten(1)
                         for i in range(0, len(x_u8), batch_size)])
    model.train(was_training)
    return out


@torch.inference_mode()
def evaluate_split(model: torch.nn.Module, x_u8: torch.Tensor, y: torch.Tensor | None,
                   batch_size: int = EVAL_BATCH, features: torch.Tensor | None = None) -> dict:
    """Mean loss (and accuracy for classifiers) over a whole tensor set, in eval mode.

    `features`: `frozen_features(model, x_u8)` of a frozen-encoder classifier; then only its head runs.
    """
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=x_u8.device, dtype=torch.float64)
    correct = torch.zeros((), device=x_u8.device, dtype=torch.int64)
    is_ae = isinstance(model, Autoencoder)
    in_range, target_range = _ranges(model)
    precision = _precision(model)
    for i in range(0, len(x_u8), batch_size):
        with autocast(precision, x_u8.device):
            if features is not None:
                out = model.head(features[i:i + batch_size])
            else:
                xb = _batch(x_u8[i:i + batch_size], in_range)
                out = model(xb)
        if precision != "fp32":
            out = out.float()                         # losses and their sums in float32
        if is_ae:
            target = xb if target_range == in_range else _batch(x_u8[i:i + batch_size], target_range)
            # MSE per pixel, averaged over images: the same number nn.MSELoss gives per batch.
            total_loss += F.mse_loss(out, target, reduction="sum") / target[0].numel()
        else:
            yb = y[i:i + batch_size]
            total_loss += F.cross_entropy(out, yb, reduction="sum")
            correct += (out.argmax(1) == yb).sum()
    model.train(was_training)
    n = len(x_u8)
    result = {"loss": total_loss.item() / n}
    if not is_ae:
        result["acc"] = correct.item() / n
    return result


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def train_one_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x_u8: torch.Tensor,
                    y: torch.Tensor | None, batch_size: int, seed: int, epoch: int,
                    on_batch: Callable[[int, int], None] | None = None, *,
                    recipe: RecipeSpec | None = None, epochs: int = 1, base_lr: float | None = None,
                    graphed: "cudagraph.GraphedSteps | None" = None) -> float:
    """One pass over the training tensors in a seeded random order; returns the mean training loss.

    `recipe` (off by default): drawn-style images for a share of the epoch, augmentation of each
    batch, label smoothing, and the learning rate per step from `base_lr` by the schedule over
    `epochs` epochs (epoch counts from 1). `graphed`: the run's CUDA-graphed steps (cudagraph.py),
    which then run the epoch's batches (only for recipes they can carry: cudagraph.why_not).
    """
    with SEED_LOCK:
        torch.manual_seed(_epoch_seed(seed, epoch))   # dropout masks: repeatable and resumable
    order = torch.randperm(len(x_u8), generator=torch.Generator().manual_seed(_epoch_seed(seed, epoch)))
    order = order.to(x_u8.device)
    if graphed is not None:
        return graphed.epoch(order, on_batch)
    aug_gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch) + 7_919) if augments(recipe) else None
    if recipe is not None and recipe.drawn > 0:       # this epoch's share of drawings, drawn at once
        x_u8 = drawn_epoch(x_u8, recipe.drawn, recipe.drawn_outline, recipe.drawn_rotate,
                           torch.Generator().manual_seed(_epoch_seed(seed, epoch) + 15_485))
    smoothing = recipe.label_smoothing if recipe is not None else 0.0
    scheduled = recipe is not None and recipe.schedule != "constant" and base_lr is not None
    model.train()
    is_ae = isinstance(model, Autoencoder)
    in_range, target_range = _ranges(model)
    precision = _precision(model)
    running = torch.zeros((), device=x_u8.device)
    n_batches = (len(order) + batch_size - 1) // batch_size
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        images = x_u8[idx] if aug_gen is None else augment(x_u8[idx], recipe, aug_gen)
        xb = _batch(images, in_range)
        if precision == "fp32":
            out = model(xb)
        else:
            with autocast(precision, x_u8.device):
                out = model(xb)
            out = out.float()                         # the loss in float32
        if is_ae:
            loss = F.mse_loss(out, xb if target_range == in_range else _batch(images, target_range))
        else:
            loss = F.cross_entropy(out, y[idx], label_smoothing=smoothing)
        if scheduled:
            factor = lr_factor(recipe, (epoch - 1) * n_batches + b, epochs * n_batches, n_batches)
            for group in optimizer.param_groups:
                group["lr"] = base_lr * factor
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.detach() * len(idx)           # stays on the device: no sync per step
        if on_batch is not None and (b % 50 == 49 or b == n_batches - 1):
            on_batch(b + 1, n_batches)
    return running.item() / len(order)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_name()}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def split_for(spec: RunSpec, data: FashionMNIST, device: torch.device | str) -> Split:
    """The training, validation and test tensors a spec asks for, on `device`."""
    return split(data, spec.val_size, spec.subset, spec.split_seed, device)


def _check_resumable(m: dict, fingerprint: str, encoder_source: dict | None) -> str | None:
    """Why the partial run `m` cannot be resumed, or None."""
    if m["data_fingerprint"] != fingerprint:
        return (f"its epochs were trained on other data ({m['data_fingerprint']}, now {fingerprint}); "
                "point --data at the data it used, or delete its folder to start it again")
    if (m.get("provenance") or {}).get("encoder_source") != encoder_source:
        return "the encoder it started from changed since; delete its folder to start it again"
    if "optim" not in m["roles"]:
        return "it holds no optimizer state to resume from; delete its folder to start it again"
    return None


def _continuation_source(store: RunStore, spec: RunSpec) -> tuple[str, dict] | None:
    """The complete run with this spec but fewer epochs, the longest, to continue from."""
    best = None
    for rid in store.run_ids():
        try:
            m = store.manifest(rid)
        except CheckpointError:
            continue
        if not m or not m["complete"] or m["kind"] != spec.kind or m["spec"]["epochs"] >= spec.epochs:
            continue
        try:
            other = RunSpec.from_dict(m["spec"])
        except ValueError:
            continue
        if other.replace(epochs=spec.epochs, name=spec.name) == spec and spec.recipe.schedule == "constant":
            if best is None or m["spec"]["epochs"] > best[1]["spec"]["epochs"]:
                best = (rid, m)
    return best


def train_run(spec: RunSpec, data: FashionMNIST, store: RunStore, device: torch.device | str = "cpu",
              callback: Callback | None = None, command: str | None = None,
              splits: dict | None = None, snapshots: bool = True) -> dict:
    """Train one run to its spec's epochs, or resume it, or return it untouched if complete.

    Holds the run's own lock while it trains: TrainingBusy at once where another live process
    trains the same run. A complete run with this spec but fewer epochs is continued in a new run
    (its weights and history copied; a fresh optimizer state, since complete runs keep none).
    `splits`: a dict to reuse the tensors of runs with the same data split. `snapshots`: keep an
    autoencoder's weights at SNAPSHOT_EPOCHS for the app (studies skip them: a file each).
    """
    device = torch.device(device)
    emit = callback or (lambda event: None)
    run_id = spec.run_id
    existing = store.find(spec)
    if existing is not None and existing != run_id:
        spec = spec.replace(name=existing.rsplit("-", 1)[0])   # the same spec under its stored name
        run_id = existing
    m = store.manifest(run_id)
    if m is not None and m["complete"]:
        emit({"type": "skip", "run": run_id, "reason": "already trained"})
        return m

    lock = store.lock(run_id)
    store.writable_folder(run_id)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrainingBusy(f"{run_id} is being trained by another process; wait for it or stop it") from None
    progress = ProgressFile(store.write_root / run_id)
    try:
        progress.begin(run_id, spec.epochs)
        manifest = _train_locked(spec, data, store, device, emit, command, splits, progress, snapshots)
    except BaseException as e:
        progress.finish("stopped" if isinstance(e, KeyboardInterrupt) else f"failed: {e}")
        raise
    finally:
        lock.release()
    progress.finish("finished")
    return manifest


def _train_locked(spec, data, store, device, emit, command, splits, progress, snapshots) -> dict:
    run_id = spec.run_id
    key = (spec.val_size, spec.subset, spec.split_seed)
    if splits is not None and key in splits:
        tensors = splits[key]
    else:
        tensors = split_for(spec, data, device)     # split() moves only the tensors it keeps
        if splits is not None:
            splits[key] = tensors
    is_ae = spec.kind == "autoencoder"
    encoder_source = None
    pretrained = None
    if spec.kind == "classifier" and spec.init == "pretrained":
        ae = store.manifest(spec.pretrained_from)
        if ae is None or not ae["complete"]:
            raise CheckpointError(f"{spec.name} starts from the encoder of {spec.pretrained_from}, which is "
                                  f"{'not complete' if ae else 'not in the store'}; train it first")
        encoder_source = {"run": spec.pretrained_from, "file": ae["roles"]["last"]}
        state = store.read_file(spec.pretrained_from, "last", ae)
        pretrained = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}

    old = store.manifest(run_id)                 # a partial run of this spec, or None
    started_from = None
    if old is not None:
        why = _check_resumable(old, tensors.fingerprint, encoder_source)
        if why:
            raise CheckpointError(f"{run_id} is partial ({len(old['history'])} of {spec.epochs} epochs) and "
                                  f"cannot resume: {why}")
        reason = f"resuming after epoch {len(old['history'])}"
    else:
        source = _continuation_source(store, spec)
        if source is not None:
            src_id, src = source
            if src["data_fingerprint"] != tensors.fingerprint:
                source = None
        if source is not None:
            copied = store.copy_weights_from(src_id, spec)
            started_from = {"run": src_id, "epoch": len(src["history"])}
            old = {**copied, "history": src["history"], "best_epoch": src["best_epoch"], "optimizer": None,
                   "provenance": {**(src.get("provenance") or {}), "started_from": started_from}}
            reason = f"continuing from {src_id} after its epoch {len(src['history'])}"
        else:
            reason = "new run"

    check_precision(spec.precision, device)
    with SEED_LOCK:                              # runs trained in threads (gpu.py) each get their own seed
        torch.manual_seed(spec.seed + spec.init_seed_offset)
        model = make_model(spec, pretrained)
    model = _prepare(model, device)
    if device.type == "cpu":
        tune_cpu_allocator()
    optimizer = make_optimizer(model, spec.optimizer)
    history: list[dict] = []
    best_epoch = 0
    wall_before = 0.0
    if old is not None:
        model.load_state_dict(store.read_file(run_id, "last", old) if started_from is None else
                              store.read_file(started_from["run"], "last"))
        if old.get("optimizer") is not None:
            load_optimizer_state(optimizer, optimizer_from_tensors(store.read_file(run_id, "optim", old),
                                                                   old["optimizer"]))
        history = list(old["history"])
        best_epoch = old["best_epoch"]
        wall_before = (old.get("provenance") or {}).get("wall_time_s", 0.0)
        started_from = started_from or (old.get("provenance") or {}).get("started_from")
    start_epoch = len(history) + 1
    emit({"type": "start", "run": run_id, "name": spec.name, "epochs": spec.epochs, "start_epoch": start_epoch,
          "reason": reason})

    x_train, y_train = tensors.train_x, (None if is_ae else tensors.train_y)
    eval_sets = {"train": (x_train, y_train), "val": (tensors.val_x, None if is_ae else tensors.val_y),
                 "test": (tensors.test_x, None if is_ae else tensors.test_y)}
    features = {k: None for k in eval_sets}
    wall_this_run = 0.0
    if not is_ae and model.frozen_encoder:
        t0 = time.perf_counter()
        features = {k: frozen_features(model, x) for k, (x, _) in eval_sets.items()}
        wall_this_run += time.perf_counter() - t0
    n_eval = sum(len(x) for x, _ in eval_sets.values())
    graphed = None
    if device.type == "cuda" and cudagraph.why_not(model, optimizer, spec.recipe, device) is None:
        graphed = cudagraph.GraphedSteps(model, optimizer, x_train, y_train, spec.batch_size, spec.input_range,
                                         spec.target_range, is_ae, spec.recipe.label_smoothing, spec.precision)
    for epoch in range(start_epoch, spec.epochs + 1):
        t0 = time.perf_counter()

        def on_batch(b, n, e=epoch):
            event = {"type": "batch", "run": run_id, "epoch": e, "epochs": spec.epochs, "batch": b, "batches": n}
            progress.update(event)
            emit(event)
        running = train_one_epoch(model, optimizer, x_train, y_train, spec.batch_size, spec.seed, epoch,
                                  on_batch=on_batch, recipe=spec.recipe, epochs=spec.epochs,
                                  base_lr=spec.optimizer.lr, graphed=graphed)
        t1 = time.perf_counter()
        tr, va, te = (evaluate_split(model, x, y, EVAL_BATCH, features[k]) for k, (x, y) in eval_sets.items())
        t2 = time.perf_counter()
        record = {"epoch": epoch, "train_loss_running": running, "train_loss": tr["loss"],
                  "val_loss": va["loss"], "test_loss": te["loss"]}
        if not is_ae:
            record.update(train_acc=tr["acc"], val_acc=va["acc"], test_acc=te["acc"])
        record.update(seconds=round(t2 - t0, 3), train_images_per_s=round(len(x_train) / (t1 - t0), 1),
                      eval_images_per_s=round(n_eval / (t2 - t1), 1))
        history.append(record)
        if is_ae:
            is_best = best_epoch == 0 or record["val_loss"] < history[best_epoch - 1]["val_loss"]
        else:
            is_best = best_epoch == 0 or record["val_acc"] > history[best_epoch - 1]["val_acc"]
        if is_best:
            best_epoch = epoch
        wall_this_run += t2 - t0
        provenance = {
            "command": command, "commit": _git_commit(), "device": _device_name(device),
            "torch": torch.__version__, "wall_time_s": round(wall_before + wall_this_run, 1),
            "encoder_source": encoder_source, "started_from": started_from,
        }
        snapshot = is_ae and snapshots and (epoch in SNAPSHOT_EPOCHS or epoch == spec.epochs)
        try:
            old = store.save_epoch(spec, model, optimizer, history, best_epoch, tensors.fingerprint, provenance,
                                   is_best, snapshot, old)
        except OSError as e:
            raise CheckpointError(
                f"could not write epoch {epoch} of {run_id} to {store.write_root / run_id}: {e.strerror or e}. "
                f"The checkpoint of epoch {epoch - 1} is untouched; free space or choose another "
                "--checkpoints folder, then run the same command to resume.") from e
        event = {"type": "epoch", "run": run_id, "record": record, "epochs": spec.epochs, "best_epoch": best_epoch}
        progress.update(event)
        emit(event)
    emit({"type": "done", "run": run_id, "record": history[-1], "best_epoch": best_epoch})
    return old


def train_runs(specs: list[RunSpec], data: FashionMNIST, store: RunStore, device: torch.device | str = "cpu",
               callback: Callback | None = None, command: str | None = None) -> dict[str, dict]:
    """Train runs in order (an autoencoder before the classifiers that start from it); {run id: manifest}."""
    splits: dict = {}
    out = {}
    for spec in specs:
        m = train_run(spec, data, store, device, callback, command, splits)
        out[m["id"]] = m
    return out
