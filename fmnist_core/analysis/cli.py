"""The representation commands of `python -m fmnist_core`: features, similarity, probe, drift.

Bad input (an unknown run or layer, a history-only run, runs trained on other data, features that do
not fit in memory) raises RepresentationError/CheckpointError, which the CLI prints as one line, exit 2.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

PROJECTOR_MAX_VALUES = 4096      # default projector layers: those of at most this many values an image


def add_parsers(sub, add_common) -> None:
    p = sub.add_parser("features", help="a run's activations per layer on a split, as one npz (and projector files)")
    p.add_argument("run", help="a run id, prefix or name; untrained:RUN for the same spec with fresh weights")
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: all; see the error for the list)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--out", required=True, help="the npz file to write: one array per layer, plus labels")
    p.add_argument("--projector", default=None, metavar="DIR",
                   help="also write TensorBoard projector files there (default layers: those of at most "
                        f"{PROJECTOR_MAX_VALUES} values an image)")
    p.add_argument("--which", choices=("last", "best"), default="last")
    add_common(p)
    _images(p)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("similarity", help="linear CKA of every layer of one run against every layer of another")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--json", action="store_true")
    add_common(p)
    _images(p)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("probe", help="kNN and linear-probe accuracy of each layer, beside raw pixels")
    p.add_argument("runs", nargs="+")
    p.add_argument("--json", action="store_true")
    add_common(p)
    _images(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("drift", help="how far a run moved from the weights it started from, per layer")
    p.add_argument("run")
    p.add_argument("--json", action="store_true")
    add_common(p)
    _images(p)
    p.set_defaults(func=cmd_drift)


def _images(p) -> None:
    p.add_argument("--images", type=int, default=None, metavar="N", help="only the split's first N images")


def _setup(args):
    from ..data import load_fashion_mnist
    from ..runs import RunStore
    return RunStore(args.checkpoints), load_fashion_mnist(args.data)


def cmd_features(args) -> int:
    from ..store import atomic_write
    from . import projector
    from .represent import features, open_run, split_images

    store, data = _setup(args)
    run = open_run(store, args.run, data, args.which)
    images, labels = split_images(data, args.split, args.images)
    layers = args.layers.split(",") if args.layers else None
    feats = features(run, images, layers)
    buf = io.BytesIO()
    np.savez(buf, labels=labels.astype(np.int64), **feats)
    atomic_write(Path(args.out), buf.getvalue())
    print(f"{args.out}: {', '.join(f'{k} {tuple(v.shape)}' for k, v in feats.items())}, labels")
    if args.projector:
        chosen = feats if layers else {k: v for k, v in feats.items() if v[0].size <= PROJECTOR_MAX_VALUES}
        paths = projector.write(args.projector, chosen, labels, images, run.label)
        print(f"{args.projector}: {len(paths)} files ({', '.join(chosen)}); open with "
              f"`tensorboard --logdir {args.projector}` (Projector tab)")
    return 0


def cmd_similarity(args) -> int:
    from .represent import open_run, similarity

    store, data = _setup(args)
    a, b = open_run(store, args.run_a, data), open_run(store, args.run_b, data)
    r = similarity(store, a, b, data, args.split, limit=args.images)
    if args.json:
        print(json.dumps(r))
        return 0
    width = max(map(len, r["layers_a"]))
    print(f"linear CKA, rows {r['a']}, columns {r['b']}; {r['images']} {args.split} images\n{r['estimator']}")
    print(" " * width + "".join(f"{name:>11}" for name in r["layers_b"]))
    for name, row in zip(r["layers_a"], r["cka"]):
        print(f"{name:<{width}}" + "".join(f"{'–' if v is None else f'{v:.3f}':>11}" for v in row))
    return 0


def cmd_probe(args) -> int:
    from .represent import open_run, probes

    store, data = _setup(args)
    runs = [open_run(store, ref, data) for ref in args.runs]       # every name checked before any work
    kw = {} if args.images is None else {"n_train": args.images, "n_test": args.images}
    rows = probes(store, None, data, **kw)
    for run in runs:
        rows += probes(store, run, data, **kw)
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['run']:<44} {r['layer']:<14} kNN {r['knn_accuracy']:.4f}  linear {r['linear_probe_accuracy']:.4f}")
    return 0


def cmd_drift(args) -> int:
    from .represent import drift, open_run

    store, data = _setup(args)
    r = drift(store, open_run(store, args.run, data), data, args.images)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['run']} from {r['start']}")
        for name, c, k in zip(r["layers"], r["relative_change"], r["cka_start_end"]):
            print(f"  {name:<12} weights moved {c:.3f} of their norm; CKA start-end {k:.3f}")
    return 0
