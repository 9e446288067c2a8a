"""One training step captured as a CUDA graph and replayed: a small network's epoch without Python per step.

At batch 100 the reference network's step is about a hundred small kernels; launched one by one from
Python the GPU waits on the launches (about 1-2 ms a step), while the kernels themselves take a
fraction of that. `GraphedSteps` runs the first few steps of a run eagerly (they are real training
steps: they warm up cuDNN's algorithm choice and create Adam's state), then captures one whole
step (gather of the batch from the resident uint8 data, scaling, forward, loss, backward, the fused
Adam update, the running loss) into a CUDA graph, and replays it for every later full batch: one
copy of the batch's indices and one graph launch per step, no host synchronisation.

The same update as the eager loop (train.train_one_epoch): the same batch order, the same loss,
Adam's update with the same hyperparameters; dropout draws come from the CUDA generator, seeded
per epoch as there, in another order of draws (so not bit-identical to an eager CUDA run).

It applies where nothing changes between steps but the batch: no augmentation (drawn on the CPU),
a constant learning rate, Adam or AdamW. Anything else, or any error while capturing, and the run
goes on eagerly (`reason` says why). `FMNIST_CUDA_GRAPHS=0` switches it off.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

import torch
import torch.nn.functional as F

from .data import scale
from .precision import autocast

WARMUP_STEPS = 3
# Runs trained in threads (gpu.py) capture one at a time, and no other thread seeds the generators
# or draws dropout eagerly meanwhile (the CUDA generator counts a capture's draws apart from eager
# ones); train.py seeds under it too.
CAPTURE_LOCK = threading.RLock()
fallbacks: list[str] = []              # why a run went eager, for the GPU check's log


def enabled() -> bool:
    return os.environ.get("FMNIST_CUDA_GRAPHS", "1") != "0" and torch.cuda.is_available()


def why_not(model: torch.nn.Module, optimizer: torch.optim.Optimizer, recipe, device: torch.device) -> str | None:
    """Why a run's steps cannot be graphed, or None."""
    if device.type != "cuda":
        return "not on CUDA"
    if not enabled():
        return "switched off (FMNIST_CUDA_GRAPHS=0)"
    if recipe is not None and (recipe.translate or recipe.hflip or recipe.drawn or recipe.schedule != "constant"):
        return "the recipe augments, draws or schedules the learning rate"
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return "only Adam and AdamW are captured"
    if not any(p.requires_grad for p in model.parameters()):
        return "nothing trains"
    return None


def capture(body: Callable[[], None]):
    """A CUDA graph of `body` (which is not run), on a side stream; `.replay()` runs it.

    Only this thread's calls are checked during the capture (thread_local): other threads' runs go on.
    Tests replace this function to run the step logic on the CPU.
    """
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=torch.cuda.Stream(), capture_error_mode="thread_local"):
        body()
    return graph


class GraphedSteps:
    """Training steps of one run on CUDA: eager warm-up, then one captured step replayed."""

    def __init__(self, model, optimizer, x_u8: torch.Tensor, y: torch.Tensor | None, batch_size: int,
                 in_range: str, target_range: str, is_ae: bool, smoothing: float, precision: str):
        self.model, self.optimizer = model, optimizer
        self.x_u8, self.y = x_u8, y
        self.batch_size = batch_size
        self.in_range, self.target_range, self.is_ae = in_range, target_range, is_ae
        self.smoothing, self.precision = smoothing, precision
        dev = x_u8.device
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self.running = torch.zeros((), device=dev)
        self.graph = None                       # a torch.cuda.CUDAGraph once captured
        self.failed: str | None = None
        self.steps_done = 0
        if dev.type == "cuda":
            for group in optimizer.param_groups:
                group["capturable"] = True      # Adam's step counter and update stay on the GPU

    # The step's body: the same arithmetic as train.train_one_epoch's loop.
    def _loss(self, idx: torch.Tensor) -> torch.Tensor:
        images = self.x_u8[idx]
        xb = scale(images, self.in_range).contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, xb.device):
            out = self.model(xb)
        out = out.float()
        if self.is_ae:
            target = xb if self.target_range == self.in_range else \
                scale(images, self.target_range).contiguous(memory_format=torch.channels_last)
            return F.mse_loss(out, target)
        return F.cross_entropy(out, self.y[idx], label_smoothing=self.smoothing)

    def _eager(self, idx: torch.Tensor) -> None:
        # Before a capture: gradients made afresh. After it: the graph's own gradient tensors, zeroed
        # in place, so that its replays keep updating from the tensors they were captured with.
        self.optimizer.zero_grad(set_to_none=self.graph is None)
        loss = self._loss(idx)
        loss.backward()
        self.optimizer.step()
        self.running += loss.detach() * len(idx)

    def _body(self) -> None:
        """The captured step. Its gradients start from None, so each replay writes them afresh."""
        loss = self._loss(self.idx)
        loss.backward()
        self.optimizer.step()
        self.running.add_(loss.detach() * self.batch_size)

    def _capture(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = capture(self._body)

    def epoch(self, order: torch.Tensor, on_batch: Callable[[int, int], None] | None = None) -> float:
        """One epoch over the training tensors in `order`; the mean training loss, as train_one_epoch."""
        self.model.train()
        self.running.zero_()
        bs = self.batch_size
        n_batches = (len(order) + bs - 1) // bs
        for b in range(n_batches):
            idx = order[b * bs:(b + 1) * bs]
            full = len(idx) == bs
            # Every step holds the lock: a replay takes the CUDA generator's next offset and an eager
            # step draws dropout from it, and either, while another thread captures, fails with
            # "Offset increment outside graph capture" (seen on an H200 with 15 runs at once). A
            # replay is one launch, so holding the lock costs the other threads next to nothing.
            with CAPTURE_LOCK:
                if self.graph is None and self.failed is None and full and self.steps_done >= WARMUP_STEPS:
                    try:
                        self._capture()
                    except Exception as e:          # any failure: this run goes on eagerly
                        self.failed = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        fallbacks.append(self.failed)
                        self.graph = None
                        if torch.cuda.is_available():
                            torch.cuda.synchronize()
                if self.graph is not None and full:
                    self.idx.copy_(idx)
                    self.graph.replay()
                else:
                    self._eager(idx)
            self.steps_done += 1
            if on_batch is not None and (b % 50 == 49 or b == n_batches - 1):
                on_batch(b + 1, n_batches)
        return self.running.item() / len(order)
