"""Several runs trained at once on one GPU: one thread and one CUDA stream per run.

A reference-sized network at batch 100 keeps a large GPU mostly idle, even with its steps replayed
as CUDA graphs (cudagraph.py): each step's kernels are small. Runs trained side by side, each on
a stream of its own, fill it: their graph launches interleave and their kernels run concurrently.
Each run is trained by the normal path (`train.train_run`): its own data order, optimizer state,
manifest, history and files, resumable as any other. A classifier that starts from an autoencoder
of the same batch waits until that autoencoder is complete.

Not repeatable bit for bit: runs trained at once share the CUDA generator, so a run's dropout
draws depend on when its steps ran relative to the others' (the same distribution).
With `workers=1`, runs are trained one after another, as `train.train_runs` does (on the CPU,
threads only share its cores: the dry run of the GPU check uses two to exercise the scheduling).

With `together`, fresh runs that stack (`together.groups`) train as one stacked network
(`together.train_together`) in one thread: a unit of the schedule, which starts once every run its
members start from is complete. On the CPU the stacks take turns (their dropout masks switch torch's
one CPU generator); on CUDA they run side by side like single runs.
"""
from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable

import torch

from .runs import RunStore
from .spec import RunSpec
from .train import Callback, train_run


def _needs(spec: RunSpec, ids: set[str]) -> str | None:
    """The run id in `ids` this spec starts from, or None."""
    if spec.kind == "classifier" and spec.init == "pretrained" and spec.pretrained_from in ids:
        return spec.pretrained_from
    return None


_CPU_STACKS = threading.Lock()


def train_concurrently(specs: list[RunSpec], data, store: RunStore, device: torch.device | str = "cuda",
                       workers: int = 8, callback: Callback | None = None, command: str | None = None,
                       on_error: Callable[[RunSpec, BaseException], None] | None = None,
                       snapshots: bool = True, together: bool = False) -> dict[str, dict]:
    """Train `specs` (in dependency order as train_runs takes them), up to `workers` at once.

    Returns {run id: manifest} of the runs that finished. A run that fails is reported to `on_error`
    (or raised at the end, the first one, where there is no `on_error`); the runs that start from it
    are not trained. A callback may be called from several threads at once. `snapshots`: as train_run's.
    `together`: stackable fresh runs train as one stacked network (a stack that fails fails each run).
    """
    device = torch.device(device)
    splits: dict = {}
    if workers <= 1 and not together:
        out = {}
        for spec in specs:
            try:
                m = train_run(spec, data, store, device, callback, command, splits, snapshots=snapshots)
                out[m["id"]] = m
            except Exception as e:
                if on_error is None:
                    raise
                on_error(spec, e)
        return out

    from .train import split_for
    for spec in specs:                           # the data splits, made once before any thread starts
        key = (spec.val_size, spec.subset, spec.split_seed)
        if key not in splits:
            splits[key] = split_for(spec, data, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)

    ids = {s.run_id for s in specs}
    if together:
        from .together import units
        pending = units(list(specs), store)
    else:
        pending = [[s] for s in specs]
    done: dict[str, dict] = {}
    failed: dict[str, BaseException] = {}
    lock = threading.Lock()

    def train_unit(unit: list[RunSpec]) -> dict[str, dict]:
        if len(unit) == 1:
            return {unit[0].run_id: train_run(unit[0], data, store, device, callback, command, splits,
                                              snapshots=snapshots)}
        from .together import train_together
        with _CPU_STACKS if device.type != "cuda" else contextlib.nullcontext():
            return train_together(unit, data, store, device, callback, command)

    def work(unit: list[RunSpec]) -> dict[str, dict]:
        if device.type != "cuda":                # threads on the CPU: the scheduling, for tests
            return train_unit(unit)
        stream = torch.cuda.Stream(device)
        with torch.cuda.device(device), torch.cuda.stream(stream):
            out = train_unit(unit)
            stream.synchronize()
        return out

    running: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fmnist-gpu") as pool:
        while pending or running:
            startable = []
            for unit in list(pending):
                needs = {n for n in (_needs(s, ids) for s in unit) if n is not None}
                bad = next((n for n in needs if n in failed), None)
                if bad is not None:
                    pending.remove(unit)
                    for spec in unit:
                        failed[spec.run_id] = RuntimeError(f"not trained: {bad}, which it starts from, failed")
                        if on_error is not None:
                            on_error(spec, failed[spec.run_id])
                elif needs <= set(done):
                    startable.append(unit)
            for unit in startable:
                if len(running) >= workers:
                    break
                pending.remove(unit)
                running[pool.submit(work, unit)] = unit
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in finished:
                unit = running.pop(f)
                try:
                    ms = f.result()
                    with lock:
                        done.update(ms)
                except Exception as e:
                    for spec in unit:
                        failed[spec.run_id] = e
                        if on_error is not None:
                            on_error(spec, e)
    if failed and on_error is None:
        raise next(iter(failed.values()))
    return {m["id"]: m for m in done.values()}


class Deadline:
    """A callback that stops training (raises TimeUp) once `seconds` have passed since it was made."""

    class TimeUp(Exception):
        pass

    def __init__(self, seconds: float, then: Callback | None = None):    # float("inf"): never
        self.end = time.monotonic() + seconds
        self.then = then

    def __call__(self, event: dict) -> None:
        if self.then is not None:
            self.then(event)
        if event.get("type") in ("batch", "epoch") and time.monotonic() > self.end:
            raise Deadline.TimeUp(f"time cap reached during {event.get('run')}")
