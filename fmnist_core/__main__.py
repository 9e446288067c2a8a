"""Command line: `python -m fmnist_core {train,evaluate,classify,bench} ...` (see --help)."""
from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time

from .config import CLASSIFIERS, MODEL_NAMES, TrainConfig
from .data import DataError
from .store import CheckpointError, CheckpointStore


def _add_common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: the shipped checkpoints/)")
    if data:
        p.add_argument("--data", default=None, help="folder with the Fashion-MNIST IDX files (or set FMNIST_DATA)")
        p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def cmd_train(args) -> int:
    from tqdm import tqdm

    from .data import load_fashion_mnist, split
    from .progress import ProgressFile
    from .train import TrainingBusy, resolve_device, train_all

    device = resolve_device(args.device)
    cfg = TrainConfig(epochs=args.epochs, subset=args.subset, seed=args.seed)
    store = CheckpointStore(args.checkpoints)
    data = split(load_fashion_mnist(args.data), cfg.val_size, cfg.subset, cfg.seed, device)
    models = tuple(args.models.split(",")) if args.models else None
    progress_file = ProgressFile(store.root)
    bars: dict[str, tqdm] = {}

    def on_event(event: dict) -> None:
        progress_file.update(event)
        name = event["model"]
        if event["type"] == "start":
            bars[name] = tqdm(total=event["epochs"], initial=event["start_epoch"] - 1, desc=f"{name:>17}",
                              unit="epoch", disable=args.quiet, dynamic_ncols=True)
        elif event["type"] == "epoch":
            r = event["record"]
            shown = {"val_loss": f"{r['val_loss']:.4f}"}
            if "val_acc" in r:
                shown["val_acc"] = f"{r['val_acc']:.4f}"
            bars[name].set_postfix(shown, refresh=False)
            bars[name].update(1)
        elif event["type"] == "done":
            bars[name].close()
        elif event["type"] == "skip" and not args.quiet:
            tqdm.write(f"{name}: {event['reason']}")

    # A run started in the background may inherit an ignored SIGINT; make SIGINT and SIGTERM (the
    # app's Stop button) end it cleanly: the current epoch is dropped, finished epochs stay saved.
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    command = "python -m fmnist_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    progress_file.begin(models or MODEL_NAMES, cfg.epochs)
    try:
        manifests = train_all(data, store, cfg, device=device, models=models, callback=on_event, command=command)
    except TrainingBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except BaseException as e:
        progress_file.finish("stopped" if isinstance(e, KeyboardInterrupt) else f"failed: {e}")
        raise
    progress_file.finish("finished")
    if not args.quiet:
        for name, m in manifests.items():
            last = m["history"][-1]
            extra = f" test_acc={last['test_acc']:.4f}" if "test_acc" in last else f" test_mse={last['test_loss']:.5f}"
            print(f"{name}: {len(m['history'])} epochs,{extra}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_store
    from .data import load_fashion_mnist
    from .train import resolve_device

    store = CheckpointStore(args.checkpoints)
    results = evaluate_store(store, load_fashion_mnist(args.data), which=args.which,
                             device=resolve_device(args.device))
    if args.json:
        print(json.dumps(results))
    else:
        for name, r in results.items():
            if "error" in r:
                print(f"{name:>17}: {r['error']}")
            elif name == "autoencoder":
                print(f"{name:>17}: test MSE {r['test_mse']:.5f}")
            else:
                print(f"{name:>17}: test accuracy {r['test_accuracy']:.4f}  loss {r['test_loss']:.4f}")
    return 0 if all("error" not in r for r in results.values()) else 1


def cmd_classify(args) -> int:
    from .inference import Predictor

    predictor = Predictor.from_store(CheckpointStore(args.checkpoints), which=args.which)
    failed = 0
    for path in args.files:
        result = predictor.classify_file(path)
        failed += not result["ok"]
        if args.json:
            print(json.dumps(result), flush=True)
        elif result["ok"]:
            best = {m: p["label"] for m, p in result["predictions"].items()}
            print(f"{path}: " + ", ".join(f"{m}={label}" for m, label in best.items()), flush=True)
        else:
            print(f"{path}: error: {result['error']}", flush=True)
    return 1 if failed else 0


def cmd_bench(args) -> int:
    from .bench import run_benchmark

    result = run_benchmark(device=args.device, batches=args.batches, models=tuple(args.models.split(",")),
                           data_dir=args.data, reference=not args.no_reference,
                           progress=None if args.json else lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1) if args.json else result["summary"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmnist_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (or resume) the autoencoder and the four classifiers")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--subset", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=None, help=f"comma-separated subset of {','.join(MODEL_NAMES)}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy, loss, MSE and normalized confusion matrices")
    p.add_argument("--json", action="store_true")
    p.add_argument("--which", choices=("last", "best"), default="last", help="last epoch or best validation epoch")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("classify", help="classify image files with all four classifiers")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--which", choices=("last", "best"), default="last")
    _add_common(p, data=False)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("bench", help="time our training loop against the reference tutorial loop")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batches", type=int, default=100, help="training batches timed per loop")
    p.add_argument("--models", default="finetune", help=f"comma-separated subset of {','.join(CLASSIFIERS)}")
    p.add_argument("--no-reference", action="store_true", help="time only our loop")
    _add_common(p)
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    if getattr(args, "epochs", 1) < 1:
        parser.error("--epochs must be at least 1")
    try:
        return args.func(args)
    except (DataError, CheckpointError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs are saved; run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
