"""One training loop for the autoencoder and the four classifiers.

The data stay on the training device as uint8 tensors; a batch is an index into them, scaled to
[-1, 1] on the fly. Every epoch records the loss while training, then re-evaluates the training,
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
from filelock import FileLock, Timeout

from .config import AUTOENCODER, CLASSIFIERS, ModelConfig, TrainConfig, scheme
from .data import Split, scale
from .models import Autoencoder, Classifier, make_classifier
from .store import CheckpointError, CheckpointStore, check_writable, optimizer_from_tensors, sha256_bytes

Callback = Callable[[dict], None]


class TrainingBusy(RuntimeError):
    """Another process holds the training lock of this checkpoint folder."""


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


def make_optimizer(model: torch.nn.Module, train_cfg: TrainConfig) -> torch.optim.Adam:
    """Adam over the parameters that train (a frozen encoder's are left out).

    The fused kernel does the whole update in one pass over each tensor: on the 2-core CPU training
    ran 1-6% faster than with the default loop (benchmarks/profile_training.py --variants); on CUDA
    it avoids a kernel launch per operation.
    The same update rule, so checkpoints from either resume with the other.
    """
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=train_cfg.lr, fused=True)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """`optimizer.load_state_dict`, with each moment laid out in memory like its parameter.

    Stored moments come back contiguous while the convolution weights are channels-last; the fused
    kernel walks parameter, gradient and moments as flat arrays, so mismatched layouts would pair
    the wrong elements (tests/test_train checks a resumed run against an uninterrupted one).
    """
    optimizer.load_state_dict(state)
    for param, param_state in optimizer.state.items():
        for key, value in param_state.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                param_state[key] = torch.empty_like(param).copy_(value)


def _batch(images_u8: torch.Tensor) -> torch.Tensor:
    return scale(images_u8).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def frozen_features(model: Classifier, x_u8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Eval-mode outputs (N, 3136) of a frozen encoder, flattened as the head takes them.

    They cannot change while only the head trains, so each epoch's evaluation of a frozen scheme runs
    the head on these instead of the whole network: the same numbers for a fraction of the work.
    70,000 images take 0.9 GB in float32.
    """
    was_training = model.training
    model.eval()
    out = torch.cat([model.encoder(_batch(x_u8[i:i + batch_size])).flatten(1)
                     for i in range(0, len(x_u8), batch_size)])
    model.train(was_training)
    return out


@torch.inference_mode()
def evaluate_split(model: torch.nn.Module, x_u8: torch.Tensor, y: torch.Tensor | None,
                   batch_size: int = 1000, features: torch.Tensor | None = None) -> dict:
    """Mean loss (and accuracy for classifiers) over a whole tensor set, in eval mode.

    `features`: `frozen_features(model, x_u8)` of a frozen-encoder classifier; then only its head runs.
    """
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=x_u8.device, dtype=torch.float64)
    correct = torch.zeros((), device=x_u8.device, dtype=torch.int64)
    is_ae = isinstance(model, Autoencoder)
    for i in range(0, len(x_u8), batch_size):
        if features is not None:
            out = model.head(features[i:i + batch_size])
        else:
            xb = _batch(x_u8[i:i + batch_size])
            out = model(xb)
        if is_ae:
            # MSE per pixel, averaged over images: the same number nn.MSELoss gives per batch.
            total_loss += F.mse_loss(out, xb, reduction="sum") / xb[0].numel()
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
                    on_batch: Callable[[int, int], None] | None = None) -> float:
    """One pass over the training tensors in a seeded random order; returns the mean training loss."""
    torch.manual_seed(_epoch_seed(seed, epoch))       # dropout masks: repeatable and resumable
    order = torch.randperm(len(x_u8), generator=torch.Generator().manual_seed(_epoch_seed(seed, epoch)))
    order = order.to(x_u8.device)
    model.train()
    is_ae = isinstance(model, Autoencoder)
    running = torch.zeros((), device=x_u8.device)
    n_batches = (len(order) + batch_size - 1) // batch_size
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        xb = _batch(x_u8[idx])
        out = model(xb)
        loss = F.mse_loss(out, xb) if is_ae else F.cross_entropy(out, y[idx])
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
    return f"cpu ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"


def _resume_state(store: CheckpointStore, name: str, train_cfg: TrainConfig, model_cfg: ModelConfig,
                  fingerprint: str, encoder_source: str | None) -> tuple[dict | None, str]:
    """The manifest to resume from, or None with the reason for a fresh start."""
    try:
        m = store.manifest(name)
    except CheckpointError as e:
        return None, f"previous checkpoint unreadable ({e}); starting fresh"
    if m is None:
        return None, "no previous checkpoint"
    old = TrainConfig.from_dict(m["train_config"])
    same = (old.batch_size, old.lr, old.val_size, old.subset, old.seed) == \
           (train_cfg.batch_size, train_cfg.lr, train_cfg.val_size, train_cfg.subset, train_cfg.seed)
    if not same or ModelConfig.from_dict(m["model_config"]) != model_cfg:
        return None, "previous checkpoint used other settings; starting fresh"
    if m["data_fingerprint"] != fingerprint:
        return None, "previous checkpoint used other data; starting fresh"
    if m.get("provenance", {}).get("encoder_source") != encoder_source:
        return None, "the autoencoder changed since this classifier was trained; starting fresh"
    done = len(m["history"])
    if done >= train_cfg.epochs:
        return m, "already trained"
    if "optim" not in m["roles"]:
        return None, "previous run finished without optimizer state; starting fresh"
    return m, f"resuming after epoch {done}"


def train_model(name: str, data: Split, store: CheckpointStore, train_cfg: TrainConfig = TrainConfig(),
                model_cfg: ModelConfig = ModelConfig(), device: torch.device | str = "cpu",
                callback: Callback | None = None, command: str | None = None) -> dict:
    """Train (or resume, or skip if done) one model; returns its manifest."""
    device = torch.device(device)
    emit = callback or (lambda event: None)
    is_ae = name == AUTOENCODER
    encoder_source = None
    pretrained = None
    if not is_ae and scheme(name)[0]:
        ae = store.manifest(AUTOENCODER)
        if ae is None or not ae["complete"]:
            raise CheckpointError(f"{name} starts from the trained autoencoder; train the autoencoder first")
        encoder_source = ae["files"][ae["roles"]["last"]]
        state = store.read_file(AUTOENCODER, "last", ae)
        pretrained = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}

    resume, reason = _resume_state(store, name, train_cfg, model_cfg, data.fingerprint, encoder_source)
    if resume is not None and len(resume["history"]) >= train_cfg.epochs:
        emit({"type": "skip", "model": name, "reason": reason})
        return resume

    # Each model gets its own initialisation seed, so the four classifiers are not clones.
    torch.manual_seed(train_cfg.seed if is_ae else train_cfg.seed + CLASSIFIERS.index(name) + 1)
    model = Autoencoder(model_cfg) if is_ae else make_classifier(name, model_cfg, pretrained)
    model = _prepare(model, device)
    if device.type == "cpu":
        tune_cpu_allocator()
    optimizer = make_optimizer(model, train_cfg)
    history: list[dict] = []
    best_epoch = 0
    wall_before = 0.0
    if resume is not None:
        model.load_state_dict(store.read_file(name, "last", resume))
        load_optimizer_state(optimizer, optimizer_from_tensors(store.read_file(name, "optim", resume),
                                                               resume["optimizer"]))
        history = list(resume["history"])
        best_epoch = resume["best_epoch"]
        wall_before = resume["provenance"].get("wall_time_s", 0.0)
    start_epoch = len(history) + 1
    emit({"type": "start", "model": name, "epochs": train_cfg.epochs, "start_epoch": start_epoch,
          "reason": reason})

    x_train, y_train = data.train_x, (None if is_ae else data.train_y)
    eval_sets = {"train": (x_train, y_train), "val": (data.val_x, None if is_ae else data.val_y),
                 "test": (data.test_x, None if is_ae else data.test_y)}
    features = {k: None for k in eval_sets}
    wall_this_run = 0.0
    if not is_ae and model.frozen_encoder and start_epoch <= train_cfg.epochs:
        t0 = time.perf_counter()
        features = {k: frozen_features(model, x, train_cfg.eval_batch_size) for k, (x, _) in eval_sets.items()}
        wall_this_run += time.perf_counter() - t0
    for epoch in range(start_epoch, train_cfg.epochs + 1):
        t0 = time.perf_counter()
        running = train_one_epoch(
            model, optimizer, x_train, y_train, train_cfg.batch_size, train_cfg.seed, epoch,
            on_batch=lambda b, n, e=epoch: emit({"type": "batch", "model": name, "epoch": e,
                                                 "epochs": train_cfg.epochs, "batch": b, "batches": n}))
        t1 = time.perf_counter()
        tr, va, te = (evaluate_split(model, x, y, train_cfg.eval_batch_size, features[k])
                      for k, (x, y) in eval_sets.items())
        t2 = time.perf_counter()
        n_eval = sum(len(x) for x, _ in eval_sets.values())
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
            "encoder_source": encoder_source,
        }
        try:
            store.save_epoch(name, "autoencoder" if is_ae else "classifier", model, optimizer, model_cfg,
                             train_cfg, history, best_epoch, data.fingerprint, provenance, is_best,
                             snapshot=is_ae and (epoch in train_cfg.keep_epochs or epoch == train_cfg.epochs))
        except OSError as e:
            raise CheckpointError(
                f"could not write epoch {epoch} of {name} to {store.model_dir(name)}: {e.strerror or e}. "
                f"The checkpoint of epoch {epoch - 1} is untouched; free space or choose another "
                "--checkpoints folder, then run the same command to resume.") from e
        emit({"type": "epoch", "model": name, "record": record, "epochs": train_cfg.epochs,
              "best_epoch": best_epoch})
    manifest = store.manifest(name)
    emit({"type": "done", "model": name, "record": history[-1], "best_epoch": best_epoch})
    return manifest


def train_all(data: Split, store: CheckpointStore, train_cfg: TrainConfig = TrainConfig(),
              model_cfg: ModelConfig = ModelConfig(), device: torch.device | str = "cpu",
              models: tuple[str, ...] | None = None, callback: Callback | None = None,
              command: str | None = None) -> dict[str, dict]:
    """Train the autoencoder, then the four classifiers, holding the store's training lock.

    Raises TrainingBusy at once where another live process is training into the same store; the
    lock is an OS file lock, so it frees itself when its holder dies.
    """
    check_writable(store.root)
    lock = FileLock(str(store.root / "train.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrainingBusy(f"another training run is using {store.root}; wait for it or stop it") from None
    try:
        wanted = models or (AUTOENCODER,) + CLASSIFIERS
        return {name: train_model(name, data, store, train_cfg, model_cfg, device, callback, command)
                for name in wanted}
    finally:
        lock.release()


def is_training(store: CheckpointStore) -> bool:
    """True while some process holds the store's training lock."""
    path = store.root / "train.lock"
    if not path.exists():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False

