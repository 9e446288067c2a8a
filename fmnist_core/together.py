"""Trials trained together: runs of one architecture as one stacked network over a leading "model" axis.

Runs that differ only in their seed, learning rate, dropout rate or weight decay (the fields a stack
can carry per model; `group_key` says which runs stack) train in one process as one network: the
K convolutions of a layer become one grouped convolution over K x C channels, the K linear layers
one batched matrix product. Each run keeps what it would have had alone:

* its own initial weights (built exactly as train_run builds them, then stacked);
* its own batch order (its seed's permutation per epoch): model k sees its own images;
* its own dropout draws: the masks come from the same function as alone (models.Dropout, the fused
  kernel or its fallback) with torch's CPU generator switched to the run's own state around each
  draw, so every run consumes its own random stream in its own order;
* its own Adam state and hyperparameters (lr and weight decay as per-model vectors);
* its own manifest, history, files and lock, written each epoch through RunStore.save_epoch, in the
  format of a run trained alone: a run stopped midway resumes alone with `train_run`.

The numbers agree with a run trained alone up to float rounding (the grouped convolution sums in
another order than the fused first-block kernel; tests/test_together.py compares the histories).
Only fresh runs with the reference recipe in float32 on the CPU or CUDA are stacked; any other run
is left to `train_run`. Whether it is faster depends on the machine (docs/performance-gpu.md).
"""
from __future__ import annotations

import json
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from filelock import Timeout
from torch import nn

from .models import Dropout, make_model
from .runs import RunStore
from .spec import RecipeSpec, RunSpec
from .store import CheckpointError
from .train import (EVAL_BATCH, SEED_LOCK, _device_name, _epoch_seed, _git_commit, _prepare, make_optimizer,
                    split_for)

Callback = Callable[[dict], None]
STACKABLE = ("seed", "init_seed_offset", "optimizer.lr", "optimizer.weight_decay", "encoder.dropout", "name",
             "pretrained_from")


def group_key(spec: RunSpec) -> str | None:
    """What runs must share to train together (their spec less the stackable fields); None where the
    spec cannot be stacked at all."""
    if spec.recipe != RecipeSpec() or spec.precision != "fp32" or spec.optimizer.name not in ("adam", "adamw"):
        return None
    d = spec.to_dict()
    for path in STACKABLE:
        *parents, leaf = path.split(".")
        node = d
        for p in parents:
            node = node[p]
        node[leaf] = None
    return json.dumps(d, sort_keys=True)


def groups(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """The specs in stackable groups, in the order given (a group per key; unstackable ones alone)."""
    out: dict = {}
    for i, spec in enumerate(specs):
        key = group_key(spec)
        out.setdefault(key if key is not None else ("alone", i), []).append(spec)
    return list(out.values())


def units(specs: list[RunSpec], store: RunStore) -> list[list[RunSpec]]:
    """A schedule's units: the fresh runs (none of their files in `store`) in stackable groups, then
    every run already begun or done alone (train_together only starts fresh runs)."""
    fresh = [s for s in specs if store.find(s) is None]
    fresh_ids = {s.run_id for s in fresh}
    return groups(fresh) + [[s] for s in specs if s.run_id not in fresh_ids]


# ----------------------------------------------------------------------------- the stacked network

class Stacked:
    """K networks of one architecture as stacked tensors; `forward` runs all K on their own batches."""

    def __init__(self, models: list[nn.Module]):
        self.models = models
        self.k = len(models)
        self.kind = models[0].kind
        self.frozen = self.kind == "classifier" and models[0].frozen_encoder
        parts = [m.encoder.net for m in models]
        tail = [m.decoder.net if self.kind == "autoencoder" else m.head for m in models]
        self.layers = []                      # (kind, stacked params or None, per-model modules, trains)
        self.params: list[torch.Tensor] = []
        self.sources: list[list[torch.Tensor]] = []   # the alone parameters each stacked tensor came from
        for section, trains in ((parts, not self.frozen), (tail, True)):
            for layer_i in range(len(section[0])):
                mods = [s[layer_i] for s in section]
                self.layers.append(self._stack_layer(mods, trains))

    def _stack_layer(self, mods, trains):
        m0 = mods[0]
        if isinstance(m0, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            cat = torch.stack if isinstance(m0, nn.Linear) else torch.cat
            w = cat([m.weight.detach().contiguous() for m in mods]).clone().requires_grad_(trains)
            b = torch.cat([m.bias.detach() for m in mods]).view(self.k, -1).clone().requires_grad_(trains) \
                if m0.bias is not None else None
            if trains:
                self.params += [w] + ([b] if b is not None else [])
                self.sources += [[m.weight for m in mods]] + ([[m.bias for m in mods]] if b is not None else [])
            return (type(m0).__name__, (w, b), mods, trains)
        return (type(m0).__name__, None, mods, trains)

    # layouts: "spatial" (N, K*C, H, W) channels-last; "flat" (K, N, F)
    def forward(self, x: torch.Tensor, masks: Callable | None) -> torch.Tensor:
        """x: (N, K, H, W) images, model k's in channel k; masks(layer, like_alone) -> stacked mask."""
        # A frozen encoder's tensors do not require gradients: autograd records nothing before the head.
        state = "spatial"
        for i, (name, params, mods, _) in enumerate(self.layers):
            x, state = self._layer(name, params, mods, x, state, self.k, masks, i)
        return x

    def _layer(self, name, params, mods, x, state, k, masks, i):
        m0 = mods[0]
        if name == "Conv2d":
            w, b = params
            x = F.conv2d(x, w, b.reshape(-1) if b is not None else None, m0.stride, m0.padding, m0.dilation, k)
        elif name == "ConvTranspose2d":
            w, b = params
            x = F.conv_transpose2d(x, w, b.reshape(-1) if b is not None else None, m0.stride, m0.padding,
                                   m0.output_padding, k, m0.dilation)
        elif name == "Linear":
            w, b = params
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        elif name == "Flatten":
            n, kc, h, wd = x.shape
            x = x.reshape(n, k, kc // k, h, wd).permute(1, 0, 2, 3, 4).reshape(k, n, -1)
            state = "flat"
        elif name == "Unflatten":
            c, h, wd = m0.unflattened_size
            n = x.shape[1]
            x = x.reshape(k, n, c, h, wd).permute(1, 0, 2, 3, 4).reshape(n, k * c, h, wd)
            x = x.contiguous(memory_format=torch.channels_last)
            state = "spatial"
        elif isinstance(m0, Dropout):
            if masks is not None:                      # training; evaluation has no dropout
                x = x * masks(i, mods, x, state)
        elif isinstance(m0, (nn.MaxPool2d, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)):
            x = m0(x)
        else:
            raise TypeError(f"{name} layers do not stack")
        if state == "spatial" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, state

    def unstack_into_models(self) -> None:
        """Copy the stacked weights back into the K alone networks (for saving)."""
        with torch.no_grad():
            for stacked, alone in zip(self.params, self.sources):
                for j, p in enumerate(alone):
                    p.copy_(stacked.view(self.k, -1)[j].view(p.shape))


class StackedAdam:
    """Adam (L2 weight decay) or AdamW (decoupled) over stacked tensors, per-model lr and weight decay.

    The update of torch.optim.Adam/AdamW, written out: each model's slice is updated as its own
    Adam would (the same formula, float rounding aside).
    """

    def __init__(self, params: list[torch.Tensor], specs: list[RunSpec]):
        self.params = params
        k = len(specs)
        self.decoupled = specs[0].optimizer.name == "adamw"
        dev = params[0].device
        self.lr = torch.tensor([s.optimizer.lr for s in specs], device=dev).view(k, 1)
        self.wd = torch.tensor([s.optimizer.weight_decay for s in specs], device=dev).view(k, 1)
        self.betas, self.eps = (0.9, 0.999), 1e-8
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.k = k

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        b1, b2 = self.betas
        bc1 = 1 - b1 ** self.step_count
        bc2_sqrt = math.sqrt(1 - b2 ** self.step_count)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad.view(self.k, -1)
            pv, mv, vv = p.view(self.k, -1), m.view(self.k, -1), v.view(self.k, -1)
            if self.decoupled:
                pv.mul_(1 - self.lr * self.wd)
            elif bool((self.wd != 0).any()):
                g = g + self.wd * pv
            mv.lerp_(g, 1 - b1)
            vv.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (vv.sqrt() / bc2_sqrt).add_(self.eps).mul_(bc1 / self.lr)    # lr / bc1 per model
            pv.addcdiv_(mv, denom, value=-1.0)
            p.grad = None

    def into_optimizers(self, optimizers: list[torch.optim.Optimizer], sources: list[list[torch.Tensor]]) -> None:
        """Each run's alone optimizer given its slice of the state (for saving, in the alone format)."""
        for j, opt in enumerate(optimizers):
            for stacked_i, alone in enumerate(sources):
                p = alone[j]
                opt.state[p] = {
                    "step": torch.tensor(float(self.step_count), dtype=torch.float32, device=p.device),
                    "exp_avg": self.exp_avg[stacked_i].view(self.k, -1)[j].view(p.shape).clone()
                    .contiguous(memory_format=_format_of(p)),
                    "exp_avg_sq": self.exp_avg_sq[stacked_i].view(self.k, -1)[j].view(p.shape).clone()
                    .contiguous(memory_format=_format_of(p)),
                }


def _format_of(p: torch.Tensor):
    return torch.channels_last if p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) \
        and not p.is_contiguous() else torch.contiguous_format


# ----------------------------------------------------------------------------- training

class _Masks:
    """Dropout masks per model from the run's own CPU generator state, in the order alone draws them."""

    def __init__(self, k: int):
        self.states = [None] * k

    def seed(self, seeds: list[int]) -> None:
        keep = torch.get_rng_state()
        self.states = []
        for s in seeds:
            torch.manual_seed(s)
            self.states.append(torch.get_rng_state())
        torch.set_rng_state(keep)

    def __call__(self, layer_i, mods, x, state):
        keep = torch.get_rng_state()
        try:
            parts = []
            k = len(mods)
            for j, m in enumerate(mods):
                torch.set_rng_state(self.states[j])
                if state == "spatial":
                    n, kc, h, w = x.shape
                    like = torch.ones((n, kc // k, h, w), device=x.device).contiguous(memory_format=torch.channels_last)
                else:
                    like = torch.ones(x.shape[1:], device=x.device)
                parts.append(m(like) if m.p > 0 else like)     # Dropout of ones: its scaled keep-mask
                self.states[j] = torch.get_rng_state()
        finally:
            torch.set_rng_state(keep)
        return torch.cat(parts, 1) if state == "spatial" else torch.stack(parts)


def _check(specs: list[RunSpec]) -> None:
    keys = {group_key(s) for s in specs}
    if None in keys or len(keys) != 1:
        raise ValueError("these runs do not stack: they must share all but seed, lr, dropout and weight decay, "
                         "use the reference recipe in fp32 and Adam or AdamW")


def train_together(specs: list[RunSpec], data, store: RunStore, device: torch.device | str = "cpu",
                   callback: Callback | None = None, command: str | None = None) -> dict[str, dict]:
    """Train fresh runs of one stackable group as one stacked network; {run id: manifest}.

    Runs already in the store (complete or partial) are not touched here: train them with train_run.
    """
    _check(specs)
    device = torch.device(device)
    emit = callback or (lambda e: None)
    for s in specs:
        if store.find(s) is not None:
            raise CheckpointError(f"{s.run_id} is already in the store; train_together only starts fresh runs")
    spec0 = specs[0]
    tensors = split_for(spec0, data, device)
    is_ae = spec0.kind == "autoencoder"
    locks = []
    try:
        for s in specs:
            store.writable_folder(s.run_id)
            lock = store.lock(s.run_id)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise CheckpointError(f"{s.run_id} is being trained by another process") from None
            locks.append(lock)
        return _train(specs, data, store, device, emit, command, tensors, is_ae)
    finally:
        for lock in locks:
            lock.release()


def _pretrained(store: RunStore, spec: RunSpec):
    if spec.kind != "classifier" or spec.init != "pretrained":
        return None, None
    ae = store.manifest(spec.pretrained_from)
    if ae is None or not ae["complete"]:
        raise CheckpointError(f"{spec.name} starts from {spec.pretrained_from}, which is not complete; train it first")
    state = store.read_file(spec.pretrained_from, "last", ae)
    return ({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")},
            {"run": spec.pretrained_from, "file": ae["roles"]["last"]})


def _train(specs, data, store, device, emit, command, tensors, is_ae) -> dict[str, dict]:
    k = len(specs)
    models, optimizers, sources = [], [], []
    for s in specs:
        pretrained, source = _pretrained(store, s)
        with SEED_LOCK:
            torch.manual_seed(s.seed + s.init_seed_offset)
            models.append(_prepare(make_model(s, pretrained), device))
        optimizers.append(make_optimizer(models[-1], s.optimizer))
        sources.append(source)
    net = Stacked(models)
    opt = StackedAdam(net.params, specs)
    masks = _Masks(k)
    x_train, y_train = tensors.train_x, tensors.train_y
    eval_sets = {"train": (x_train, y_train), "val": (tensors.val_x, tensors.val_y),
                 "test": (tensors.test_x, tensors.test_y)}
    histories: list[list[dict]] = [[] for _ in specs]
    best = [0] * k
    olds: list[dict | None] = [None] * k
    wall = 0.0
    bs, epochs = specs[0].batch_size, specs[0].epochs
    n = len(x_train)
    for s in specs:
        emit({"type": "start", "run": s.run_id, "name": s.name, "epochs": epochs, "start_epoch": 1,
              "reason": f"new run, trained together with {k - 1} others"})
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        orders = [torch.randperm(n, generator=torch.Generator().manual_seed(_epoch_seed(s.seed, epoch))).to(device)
                  for s in specs]
        masks.seed([_epoch_seed(s.seed, epoch) for s in specs])
        running = torch.zeros(k, device=device)
        for b in range(0, n, bs):
            idx = torch.stack([o[b:b + bs] for o in orders])                      # (K, N)
            images = x_train[idx]                                                  # (K, N, 28, 28)
            loss_k = _losses(net, specs[0], images, None if is_ae else y_train[idx], masks, k)
            loss_k.sum().backward()
            opt.step()
            running += loss_k.detach() * idx.shape[1]
        t1 = time.perf_counter()
        results = _evaluate(net, specs[0], eval_sets, is_ae, k)
        t2 = time.perf_counter()
        wall += t2 - t0
        net.unstack_into_models()
        opt.into_optimizers(optimizers, net.sources)
        n_eval = sum(len(x) for x, _ in eval_sets.values())
        for j, s in enumerate(specs):
            rec = {"epoch": epoch, "train_loss_running": running[j].item() / n,
                   "train_loss": results["train"][j]["loss"], "val_loss": results["val"][j]["loss"],
                   "test_loss": results["test"][j]["loss"]}
            if not is_ae:
                rec.update(train_acc=results["train"][j]["acc"], val_acc=results["val"][j]["acc"],
                           test_acc=results["test"][j]["acc"])
            rec.update(seconds=round((t2 - t0) / k, 3), train_images_per_s=round(n * k / (t1 - t0), 1),
                       eval_images_per_s=round(n_eval * k / (t2 - t1), 1), trained_together=k)
            histories[j].append(rec)
            h = histories[j]
            better = (rec["val_loss"] < h[best[j] - 1]["val_loss"]) if is_ae else (rec["val_acc"] > h[best[j] - 1]["val_acc"])
            is_best = best[j] == 0 or better
            if is_best:
                best[j] = epoch
            provenance = {"command": command, "commit": _git_commit(), "device": _device_name(device),
                          "torch": torch.__version__, "wall_time_s": round(wall / k, 1),
                          "encoder_source": sources[j], "started_from": None,
                          "trained_together": [t.run_id for t in specs]}
            olds[j] = store.save_epoch(s, models[j], optimizers[j], h, best[j], tensors.fingerprint, provenance,
                                       is_best, False, olds[j])
            emit({"type": "epoch", "run": s.run_id, "record": rec, "epochs": epochs, "best_epoch": best[j]})
    for j, s in enumerate(specs):
        emit({"type": "done", "run": s.run_id, "record": histories[j][-1], "best_epoch": best[j]})
    return {s.run_id: olds[j] for j, s in enumerate(specs)}


def _inputs(images_u8: torch.Tensor, pixel_range: str) -> torch.Tensor:
    """(K, N, 28, 28) uint8 -> (N, K, 28, 28) float, channels-last: model k's images in channel k."""
    from .data import scale
    kk, nn_, h, w = images_u8.shape
    x = scale(images_u8.reshape(kk * nn_, h, w), pixel_range).view(kk, nn_, h, w).transpose(0, 1)
    return x.contiguous(memory_format=torch.channels_last)


def _losses(net: Stacked, spec: RunSpec, images: torch.Tensor, y: torch.Tensor | None, masks, k: int) -> torch.Tensor:
    """Each model's mean loss over its batch, (K,)."""
    x = _inputs(images, spec.input_range)
    out = net.forward(x, masks)
    if y is None:
        target = x if spec.target_range == spec.input_range else _inputs(images, spec.target_range)
        return ((out.float() - target) ** 2).transpose(0, 1).reshape(k, -1).mean(1)
    kk, nn_ = y.shape
    return F.cross_entropy(out.reshape(kk * nn_, -1), y.reshape(-1), reduction="none").view(kk, nn_).mean(1)


@torch.no_grad()
def _evaluate(net: Stacked, spec: RunSpec, eval_sets: dict, is_ae: bool, k: int) -> dict:
    """Per set, per model: {"loss", "acc"} as train.evaluate_split gives them (eval mode: no dropout)."""
    out = {}
    for name, (x_u8, y) in eval_sets.items():
        total = torch.zeros(k, dtype=torch.float64, device=x_u8.device)
        correct = torch.zeros(k, dtype=torch.int64, device=x_u8.device)
        for i in range(0, len(x_u8), EVAL_BATCH):
            xb = x_u8[i:i + EVAL_BATCH]
            images = xb.unsqueeze(0).expand(k, *xb.shape)
            x = _inputs(images, spec.input_range)
            o = net.forward(x, None)
            if is_ae:
                target = x if spec.target_range == spec.input_range else _inputs(images, spec.target_range)
                total += ((o - target) ** 2).transpose(0, 1).reshape(k, len(xb), -1).mean(2).sum(1).double()
            else:
                yb = y[i:i + EVAL_BATCH]
                total += F.cross_entropy(o.reshape(-1, o.shape[-1]), yb.repeat(k), reduction="none").view(k, -1).sum(1).double()
                correct += (o.argmax(-1) == yb).sum(1)
        m = len(x_u8)
        out[name] = [{"loss": total[j].item() / m, **({} if is_ae else {"acc": correct[j].item() / m})}
                     for j in range(k)]
    return out
