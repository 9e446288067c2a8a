"""Representations of stored runs: features, CKA grids, probes and drift, cached by weights.

A run is named as anywhere else (id, unique prefix or preset name) or as `untrained:RUN`, the same
spec with fresh initial weights (the control). Every result is computed once per weights digest,
data and settings and kept as an npz (no pickles) in the store's cache folder, as the latent map is;
the reference runs' results ship in checkpoints/cache so a first visit does not compute them.
Features themselves are not cached (10,000 test images of the reference network are ~0.5 GB).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..data import FashionMNIST, split
from ..runs import RunStore
from ..store import CheckpointError, cached_arrays
from . import cka as cka_mod
from .features import MAX_BYTES_ENV, PIXELS, RepresentationError, batches, check_layers, check_memory, extract
from .features import layer_names, layer_shapes, memory_budget, rows
from .features import untrained
from .probes import MAX_DIMS, METHOD as PROBE_METHOD, probe_layer, reduced_features

VERSION = "1"              # bump when a computation changes: old cache files are then ignored
UNTRAINED = "untrained:"
SPLITS = ("test", "val", "train")
PROBE_TRAIN = 10_000       # training-split images the probes are fitted on
BOOTSTRAP = 200


@dataclass
class Run:
    """A loaded run: its label (run id, or untrained:<id>), network and weights digest."""
    label: str
    model: torch.nn.Module
    digest: str
    run_id: str


def open_run(store: RunStore, ref: str, data: FashionMNIST | None = None, which: str = "last") -> Run:
    """Load a run (or its untrained control); RepresentationError/CheckpointError naming what is wrong."""
    control = ref.startswith(UNTRAINED)
    run_id = store.resolve(ref[len(UNTRAINED):] if control else ref)
    m = store.require(run_id)
    if data is not None and m.get("data_fingerprint") and m["data_fingerprint"].split(":")[0] != data.fingerprint:
        raise RepresentationError(f"{run_id} was trained on other data ({m['data_fingerprint'].split(':')[0]}, "
                                  f"the data here are {data.fingerprint}); point --data at the data it used")
    if control:
        spec = store.spec(run_id, m)
        return Run(UNTRAINED + run_id, untrained(spec).eval(),
                   f"untrained-{spec.spec_hash}-{spec.seed + spec.init_seed_offset}", run_id)
    if not m["roles"]:
        why = (m.get("weights_left_out") or {}).get("reason", "it has no weights files")
        raise RepresentationError(f"{run_id} ships its training history only ({why}); its representations need "
                                  f"weights: retrain it with `python -m fmnist_core train`")
    if which not in m["roles"]:
        raise RepresentationError(f"{run_id} has no {which!r} weights")
    return Run(run_id, store.load_model(run_id, which), m["files"][m["roles"][which]], run_id)


def _fresh(spec) -> torch.nn.Module:
    from ..models import build
    return build(spec).eval()


def split_images(data: FashionMNIST, which: str = "test", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of a split: the 10,000 test images, or the reference protocol's
    validation (10,000) or training (50,000) part of the training set (split seed 0); the first
    `limit` of them where given."""
    if which not in SPLITS:
        raise RepresentationError(f"unknown split {which!r}; choose one of {', '.join(SPLITS)}")
    if limit is not None and limit < 4:
        raise RepresentationError(f"--images must be at least 4, got {limit}")
    if which == "test":
        x, y = data.test_images, data.test_labels
    else:
        s = split(data, 10_000, None, 0)
        x, y = (s.val_x, s.val_y) if which == "val" else (s.train_x, s.train_y)
    return x[:limit].numpy(), y[:limit].numpy()


def features(run: Run, images: np.ndarray, layers: list[str] | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """{layer: (N, *shape) float32}, after checking the layers exist and fit in memory."""
    wanted = check_layers(run.model, layers, run.label)
    shapes = layer_shapes(run.model)
    check_memory({k: shapes[k] for k in wanted}, len(images), run.label)
    return extract(run.model, images, wanted, progress=progress)


def run_grams(model: torch.nn.Module, images: np.ndarray, layers: list[str], m: int, label: str = "the run"
              ) -> cka_mod.Grams:
    """The CKA Grams of `layers` of a network on `images` in blocks of m (len(images) a multiple of
    m), streamed from the network batch by batch: the features are never held whole."""
    names = check_layers(model, layers, label)
    need, budget = 8 * len(names) * len(images) * m, memory_budget()
    if need > budget:
        raise RepresentationError(
            f"the CKA Grams of {label} on {len(images):,} images need {need / 2**30:.1f} GiB, more than the "
            f"{budget / 2**30:.1f} GiB allowed (half the free memory, or ${MAX_BYTES_ENV}); choose fewer images")
    per_block = ([rows(got[name]) for name in names] for _, got in batches(model, images, names, m))
    return cka_mod.grams_of_blocks(per_block, len(names), len(images) // m, m)


def _key(*parts) -> str:
    return hashlib.sha256("|".join(map(str, (VERSION, *parts))).encode()).hexdigest()[:16]


def similarity(store: RunStore, a: Run, b: Run, data: FashionMNIST, split_name: str = "test",
               batch: int | None = cka_mod.DEFAULT_BATCH, bootstrap: int = BOOTSTRAP,
               grams: dict | None = None, limit: int | None = None) -> dict:
    """The CKA grid of every layer of `a` against every layer of `b` on one split, with its bootstrap
    spread: {"a", "b", "layers_a", "layers_b", "cka", "cka_std", "cka_low", "cka_high", "estimator", "images"}.

    `grams`: a dict the caller keeps across calls, so each run's Grams are computed once per set.
    """
    images, _ = split_images(data, split_name, limit)
    la, lb = layer_names(a.model), layer_names(b.model)
    nblocks, m = cka_mod.blocks(len(images), batch)
    used = nblocks * m

    def compute() -> dict[str, np.ndarray]:
        def gram(run: Run, names: list[str]):
            if grams is not None and run.digest in grams:
                return grams[run.digest]
            g = run_grams(run.model, images[:used], names, m, run.label)
            if grams is not None:
                grams[run.digest] = g
            return g
        ga = gram(a, la)
        gb = ga if b.digest == a.digest else gram(b, lb)
        r = cka_mod.cka_from_grams(ga, gb, bootstrap)
        return {"cka": r["cka"], **{f"cka_{k}": r[k] for k in ("std", "low", "high") if k in r},
                "layers_a": np.array(la), "layers_b": np.array(lb)}

    key = _key("cka", a.digest, b.digest, data.fingerprint, split_name, used, batch, bootstrap)
    swapped = store.cache_path(f"cka-{_key('cka', b.digest, a.digest, data.fingerprint, split_name, used, batch, bootstrap)}.npz")
    valid = lambda r: r["cka"].shape == (len(r["layers_a"]), len(r["layers_b"]))  # noqa: E731
    if swapped.is_file() and b.digest != a.digest:
        r = cached_arrays(swapped, lambda: _swap(compute()), valid)
        r = _swap(r)
    else:
        r = cached_arrays(store.cache_path(f"cka-{key}.npz"), compute, valid)
    out = {"a": a.label, "b": b.label, "layers_a": [str(x) for x in r["layers_a"]],
           "layers_b": [str(x) for x in r["layers_b"]], "cka": _nested(r["cka"]),
           "estimator": cka_mod.ESTIMATOR.format(batch=m), "images": used, "split": split_name}
    for k in ("std", "low", "high"):
        if f"cka_{k}" in r:
            out[f"cka_{k}"] = _nested(r[f"cka_{k}"])
    out["spread"] = f"bootstrap over the {nblocks} blocks of {m} images, {bootstrap} resamples"
    return out


def _swap(r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: (v.T if k.startswith("cka") else v) for k, v in r.items()}
    out["layers_a"], out["layers_b"] = r["layers_b"], r["layers_a"]
    return out


def _nested(a: np.ndarray) -> list:
    """A grid as nested lists of floats, NaN as None (JSON null)."""
    return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in np.asarray(a)]


def probes(store: RunStore, run: Run | None, data: FashionMNIST, n_train: int = PROBE_TRAIN,
           n_test: int | None = None, progress: Callable[[str], None] | None = None) -> list[dict]:
    """[{"run", "layer", "knn_accuracy", "linear_probe_accuracy"}] per layer of `run`, fitted on the
    first `n_train` training-split images and scored on the (first `n_test`) test images; run None:
    the raw-pixel baseline (run "pixels")."""
    train_x, train_y = split_images(data, "train", n_train)
    test_x, test_y = split_images(data, "test", n_test)
    label = run.label if run is not None else PIXELS

    def compute() -> dict[str, np.ndarray]:
        if run is None:
            names, tr, te = [PIXELS], {PIXELS: train_x / 255.0}, {PIXELS: test_x / 255.0}
        else:
            names = [n for n in layer_names(run.model) if n != PIXELS]
            tr, te = reduced_features(run.model, train_x, names), reduced_features(run.model, test_x, names)
        rows = []
        for name in names:
            if progress:
                progress(f"{label}: probing {name}")
            r = probe_layer(tr.pop(name), train_y, te.pop(name), test_y)
            rows.append((r["knn_accuracy"], r["linear_probe_accuracy"]))
        return {"layers": np.array(names), "acc": np.array(rows, np.float64).reshape(-1, 2)}

    digest = run.digest if run is not None else "pixels"
    key = _key("probes", digest, data.fingerprint, len(train_x), len(test_x), MAX_DIMS, PROBE_METHOD)
    r = cached_arrays(store.cache_path(f"probes-{key}.npz"), compute, lambda r: r["acc"].shape == (len(r["layers"]), 2))
    return [{"run": label, "layer": str(name), "knn_accuracy": round(float(acc[0]), 4),
             "linear_probe_accuracy": round(float(acc[1]), 4)} for name, acc in zip(r["layers"], r["acc"])]


def drift(store: RunStore, run: Run, data: FashionMNIST, limit: int | None = None) -> dict:
    """How far a run moved from the weights it started from, per layer: {"run", "start", "layers",
    "relative_change", "cka_start_end"}. The start is the encoder it was given (`finetune`,
    `frozen_pretrained`) or the whole network it continued from."""
    m = store.require(run.run_id)
    prov = m.get("provenance") or {}
    start = _fresh(run.model.spec)
    if prov.get("encoder_source"):
        src = prov["encoder_source"]
        state = _file_of(store, src["run"], src["file"])
        start.encoder.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
        names = [n for n in layer_names(run.model) if n.startswith(("block", "bottleneck"))]
        start_label = f"the encoder of {src['run']}"
    elif prov.get("started_from"):
        src = prov["started_from"]
        start.load_state_dict(store.read_file(src["run"], "last"))
        names = [n for n in layer_names(run.model) if n != PIXELS]
        start_label = f"{src['run']} (epoch {src.get('epoch')})"
    else:
        raise RepresentationError(f"{run.run_id} started from random weights; drift is measured for runs that "
                                  "start from another run's weights (finetune, frozen_pretrained, continuations)")
    from .features import layer_parameters
    p_end, p_start = layer_parameters(run.model), layer_parameters(start)
    change = []
    for name in names:
        num = sum(float((p_end[name][k] - p_start[name][k]).detach().pow(2).sum()) for k in p_end[name])
        den = sum(float(p_start[name][k].detach().pow(2).sum()) for k in p_start[name])
        change.append(float(np.sqrt(num / den)) if den else float("nan"))
    images, _ = split_images(data, "test", limit)
    nblocks, m = cka_mod.blocks(len(images))
    images = images[:nblocks * m]

    def compute() -> dict[str, np.ndarray]:
        ga = run_grams(run.model, images, names, m, run.label)
        grid = cka_mod.cka_from_grams(ga, run_grams(start, images, names, m, start_label))["cka"]
        return {"cka": np.diag(grid).copy()}

    start_digest = hashlib.sha256(repr(prov.get("encoder_source") or prov.get("started_from")).encode()).hexdigest()
    key = _key("drift", run.digest, start_digest, data.fingerprint, len(images), m)
    r = cached_arrays(store.cache_path(f"drift-{key}.npz"), compute, lambda r: r["cka"].shape == (len(names),))
    return {"run": run.label, "start": start_label, "layers": names,
            "relative_change": [round(c, 6) for c in change], "cka_start_end": [round(float(v), 6) for v in r["cka"]]}


def _file_of(store: RunStore, run_id: str, fname: str) -> dict[str, torch.Tensor]:
    m = store.require(run_id)
    role = next((r for r, f in m["roles"].items() if f == fname), None)
    if role is None:
        raise CheckpointError(f"{run_id} no longer holds {fname}, the weights this run started from")
    return store.read_file(run_id, role, m)


def similarity_set(store: RunStore, runs: list[Run], data: FashionMNIST, split_name: str = "test",
                   limit: int | None = None, progress: Callable[[str], None] | None = None) -> dict[tuple[str, str], dict]:
    """{(label a, label b): similarity(a, b)} for every pair of `runs` (a before b, and each with
    itself), each run's Grams computed at most once; cached pairs cost nothing."""
    grams: dict = {}
    out = {}
    for i, a in enumerate(runs):
        for b in runs[i:]:
            if progress:
                progress(f"CKA {a.label} x {b.label}")
            out[(a.label, b.label)] = similarity(store, a, b, data, split_name, grams=grams, limit=limit)
        grams.pop(a.digest, None)          # a is not needed again
    return out

