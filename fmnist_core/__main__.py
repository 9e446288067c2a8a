"""Command line: `python -m fmnist_core {train,runs,study,evaluate,classify,bench,features,similarity,probe,drift} ...`
(see --help)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from .data import DataError
from .preset_runs import preset_of
from .presets import SCHEMES
from .runs import RunStore, TrainingBusy
from .spec import SpecError
from .store import CheckpointError

MODEL_NAMES = ("autoencoder",) + SCHEMES
REPOSITORY = Path(__file__).resolve().parent.parent     # a clone's root, where benchmarks/ lies


def _add_common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--checkpoints", default=None,
                   help="run store folder (default: the shipped checkpoints/ and the user folder together)")
    if data:
        p.add_argument("--data", default=None, help="folder with the Fashion-MNIST IDX files (or set FMNIST_DATA)")
        p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def _overrides(args) -> dict[str, object]:
    """--set FIELD=VALUE pairs, then --epochs, --subset and --seed where given."""
    from .spec import parse_assignment
    out: dict[str, object] = {}
    if getattr(args, "spec", None):
        from .spec import load_spec_file
        _, fields = load_spec_file(args.spec)
        out.update(fields)
    for text in args.set or []:
        path, value = parse_assignment(text)
        out[path] = value
    for name in ("epochs", "subset", "seed", "precision"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    return out


def specs_from_args(args) -> list:
    """The runs `train` is asked for, in training order."""
    from .presets import reference_specs, specs_for
    from .spec import RunSpec, load_spec_file
    overrides = _overrides(args)
    preset = args.preset
    if args.spec:
        file_preset, _ = load_spec_file(args.spec)
        if preset and file_preset and preset != file_preset:
            raise SpecError(f"--preset {preset} and the spec file's preset {file_preset} disagree; give one")
        preset = preset or file_preset
        if preset is None:
            return [RunSpec().with_overrides(overrides)]
    if preset:
        if args.models:
            raise SpecError("--models chooses among the reference protocol's five runs; it does not go with --preset")
        return specs_for(preset, overrides)
    specs = reference_specs(overrides)
    wanted = args.models.split(",") if args.models else list(specs)
    for name in wanted:
        if name not in specs:
            raise SpecError(f"--models: unknown model {name!r}; expected some of {','.join(MODEL_NAMES)}")
    out = [specs[n] for n in wanted]
    # A pretrained scheme needs its autoencoder trained first, asked for or not.
    if any(s.init == "pretrained" for s in out) and specs["autoencoder"] not in out:
        out.insert(0, specs["autoencoder"])
    return out


def _result_line(m: dict) -> str:
    last = m["history"][-1]
    figure = f"test_acc={last['test_acc']:.4f}" if "test_acc" in last else f"test_mse={last['test_loss']:.5f}"
    preset = preset_of(m["spec"])             # a run of the same spec stored under another name
    return (f"{m['id']}: {len(m['history'])} epochs, {figure}"
            + (f" (preset {preset})" if preset not in (None, m["name"]) else ""))


def cmd_train(args) -> int:
    from tqdm import tqdm

    from .data import load_fashion_mnist
    from .train import resolve_device, train_runs

    from .precision import check as check_precision

    specs = specs_from_args(args)
    device = resolve_device(args.device)
    for spec in specs:
        check_precision(spec.precision, device)   # before the data load: one line, exit 2
    store = RunStore(args.checkpoints)
    store.write_root                              # fails early, naming the folder, where it cannot be written
    data = load_fashion_mnist(args.data).to(device)
    bars: dict[str, tqdm] = {}

    def on_event(event: dict) -> None:
        run = event["run"]
        if event["type"] == "start":
            bars[run] = tqdm(total=event["epochs"], initial=event["start_epoch"] - 1, desc=event["name"],
                             unit="epoch", disable=args.quiet, dynamic_ncols=True)
            if not args.quiet:
                tqdm.write(f"{run}: {event['reason']}")
        elif event["type"] == "epoch":
            r = event["record"]
            shown = {"val_loss": f"{r['val_loss']:.4f}"}
            if "val_acc" in r:
                shown["val_acc"] = f"{r['val_acc']:.4f}"
            bars[run].set_postfix(shown, refresh=False)
            bars[run].update(1)
        elif event["type"] == "done":
            bars[run].close()
        elif event["type"] == "skip" and not args.quiet:
            tqdm.write(f"{run}: {event['reason']}")

    # A run started in the background may inherit an ignored SIGINT; make SIGINT and SIGTERM (the
    # app's Stop button) end it cleanly: the current epoch is dropped, finished epochs stay saved.
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    command = "python -m fmnist_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        manifests = train_runs(specs, data, store, device, callback=on_event, command=command)
    except TrainingBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    for m in manifests.values():
        print(_result_line(m) if not args.quiet else m["id"])
    return 0


def _print_rows(args, rows: list[dict], line) -> int:
    """One JSON array with --json, else a line per row."""
    print(json.dumps(rows) if args.json else "\n".join(line(r) for r in rows))
    return 0


def cmd_runs(args) -> int:
    if args.presets:
        from .presets import PRESETS
        rows = [{"name": p.name, "kind": p.spec.kind, "source": p.source, "pretrain": p.pretrain, "note": p.note}
                for p in PRESETS.values()]
        return _print_rows(args, rows, lambda r: f"{r['name']:<28} {r['kind']:<11} {r['source']}")
    store = RunStore(args.checkpoints)
    rows = store.summaries()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no runs in {', '.join(map(str, store.roots))}")
    for r in rows:
        if "error" in r:
            print(f"{r['id']:<44} error: {r['error']}")
            continue
        figure = (f"test_acc {r['test_accuracy']:.4f}" if r.get("test_accuracy") is not None else
                  f"test_mse {r['test_mse']:.5f}" if r.get("test_mse") is not None else "")
        flags = (" read-only" if r["read_only"] else "") + ("" if r["has_weights"] else " history-only")
        flags += f" (preset {r['preset']})" if r.get("preset") not in (None, r["name"]) else ""
        print(f"{r['id']:<44} {r['kind']:<11} {r['status']:<9} {r['epochs_done']:>3}/{r['epochs']:<3} {figure}{flags}")
    return 0


def _chosen_runs(store: RunStore, refs: list[str] | None, kinds: tuple[str, ...]) -> dict[str, str]:
    """{label: run id}: the --run choices (labelled by id), or the reference runs (labelled by scheme)."""
    from .presets import reference_runs
    if refs:
        return {rid: rid for rid in (store.resolve(r) for r in refs)}
    return {name: rid for name, rid in reference_runs(store).items()
            if ("autoencoder" if name == "autoencoder" else "classifier") in kinds}


def cmd_evaluate(args) -> int:
    from .data import load_fashion_mnist
    from .evaluate import evaluate_runs
    from .train import resolve_device

    store = RunStore(args.checkpoints)
    runs = _chosen_runs(store, args.run, ("autoencoder", "classifier"))
    results = evaluate_runs(store, runs, load_fashion_mnist(args.data), which=args.which,
                            device=resolve_device(args.device))
    if args.json:
        print(json.dumps(results))
    else:
        for name, r in results.items():
            if "error" in r:
                print(f"{name:>17}: {r['error']}")
            elif "test_mse" in r:
                print(f"{name:>17}: test MSE {r['test_mse']:.5f}")
            else:
                print(f"{name:>17}: test accuracy {r['test_accuracy']:.4f}  loss {r['test_loss']:.4f}")
    return 0 if all("error" not in r for r in results.values()) else 1


def cmd_classify(args) -> int:
    from .inference import Predictor

    store = RunStore(args.checkpoints)
    predictor = Predictor.from_runs(store, _chosen_runs(store, args.run, ("classifier",)), which=args.which,
                                    with_autoencoder=False)
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


def cmd_study(args) -> int:
    from .study import StudyBusy, StudyError, list_studies, load_study, table
    try:
        if args.verb == "list":
            rows = [s.to_dict() for s in list_studies()]
            return _print_rows(args, rows, lambda r: f"{r['name']:<16} {r['trials']:>3} trials  {r['title']}")
        study = load_study(args.study)
        if args.verb == "table":
            return _study_table(args, study, table)
        return _study_run(args, study)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StudyBusy as e:             # as `train` does for a run already training
        print(f"error: {e}", file=sys.stderr)
        return 3


def _fmt(v, sign: str = "") -> str:
    if v is None:
        return "–"
    whole = abs(v) >= 100 or (abs(v) >= 1 and float(v).is_integer())
    return f"{v:{sign}.0f}" if whole else f"{v:{sign}.4f}"


def _ours(row: dict, metric: str | None) -> str:
    """Our value of a metric in a study table row, ± its std over seeds where there are several."""
    return _fmt(row["ours"].get(metric)) + (f" ± {_fmt(row['std'][metric])}" if metric in row["std"] else "")


def _study_table(args, study, table) -> int:
    store = RunStore(args.checkpoints)
    images = labels = None
    from .study import PREDICTION_METRICS
    if any(m in PREDICTION_METRICS for m in study.metrics):
        from .data import load_fashion_mnist
        d = load_fashion_mnist(args.data)
        images, labels = d.test_images.numpy(), d.test_labels.numpy()
    from .sizes import size_to_show
    epochs, subset, notes = size_to_show(study, store, args.epochs, args.subset)   # a quick study's runs too
    rows = table(study, store, images, labels, epochs, subset)
    for note in notes if args.json or args.markdown else ():    # stdout stays JSON or one Markdown table
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps(rows))
        return 0
    if args.markdown:
        print(_markdown_table(study, rows))
        return 0
    print(f"{study.title}\n{study.source}\n" + "".join(f"{note}\n" for note in notes))
    for r in rows:
        shown = {k: (f"[{len(v)} layers]" if isinstance(v, list) and v and isinstance(v[0], dict) else v)
                 for k, v in r["overrides"].items()}
        factors = ", ".join([f"preset {r['preset']}"] * (r["preset"] != study.base)
                            + [f"{k}={v}" for k, v in shown.items()]) or "base"
        state = r["runs"]
        print(f"{r['label']}  [{state}]  ({factors})")
        for m in dict.fromkeys([*study.metrics, "test_accuracy", "test_mse"]):
            if m not in r["ours"] and m not in r["published"]:
                continue
            ours = _ours(r, m)
            diff = f"  diff {_fmt(r['difference'][m], '+')}" if m in r["difference"] else ""
            diff += _p_note(r["difference_p"].get(m), r["beyond_noise"].get(m))
            print(f"    {m:<22} ours {ours:<18} published {_fmt(r['published'].get(m)):<8}{diff}")
        if r["gain"]:
            gains = ", ".join(f"{m} {_fmt(g, '+')}" + _p_note(r["gain_p"].get(m), r["gain_beyond_noise"].get(m))
                              for m in dict.fromkeys([*study.metrics, "test_accuracy", "test_mse"])
                              if (g := r["gain"].get(m)) is not None)
            print(f"    against {r['against']!r}: {gains}")
        if r["claim"]:
            print(f"    claim: {r['claim']}")
    return 0


def _p_note(p: float | None, beyond: bool | None) -> str:
    """' (p 0.012, beyond the noise)' where the seeds gave a test, else ''."""
    return "" if p is None else f" (p {p:.3f}{', beyond the noise' if beyond else ''})"


def _markdown_table(study, rows: list[dict]) -> str:
    """One row per trial: each metric ours (± std over seeds) beside the published figure and the
    difference where the document gives one, then our test accuracy or MSE; the document's claims below."""
    published = {m: any(m in r["published"] for r in rows) for m in study.metrics}
    test_column = not {"test_accuracy", "test_mse"} & set(study.metrics)
    head = ["trial", *[f"{m}: ours / published (diff)" if published[m] else m for m in study.metrics]]
    head += ["test acc. or MSE"] * test_column
    gain_column = any(r.get("against") for r in rows)
    head += ["gain in test acc. or MSE over the trial it changes"] * gain_column
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        state = r["runs"]
        cells = [r["label"] + ("" if state == "complete" else f" ({state})")]
        for m in study.metrics:
            ours = _ours(r, m)
            if not published[m]:
                cells.append(ours)
                continue
            bold = "**" if r["beyond_noise"].get(m) else ""
            diff = f" ({bold}{_fmt(r['difference'][m], '+')}{bold})" if m in r["difference"] else ""
            cells.append(f"{ours} / {_fmt(r['published'].get(m))}{diff}")
        if test_column:
            cells.append(_ours(r, next((m for m in ("test_accuracy", "test_mse") if m in r["ours"]), None)))
        if gain_column:
            m = next((m for m in ("test_accuracy", "test_mse") if m in r["gain"]), None)
            bold = "**" if r["gain_beyond_noise"].get(m) else ""
            cells.append(f"{bold}{_fmt(r['gain'][m], '+')}{bold}" if m else "–")
        lines.append("| " + " | ".join(cells) + " |")
    seeds = {r["seeds"] for r in rows if r["seeds"]}
    if seeds - {1}:
        count = f"{min(seeds)} to {max(seeds)}" if len(seeds) > 1 else f"{max(seeds)}"
        lines.append(f"\nMeans over {count} complete seeds, ± their standard deviation."
                     + (" A difference in bold is beyond the noise: a t-test on seeds − 1 degrees of freedom, "
                        "the published figure taken as one more run (error std × √(1 + 1/seeds)), puts it at "
                        "p < 0.05." if any(published.values()) else ""))
    if gain_column:
        lines.append("\nA gain is our mean minus that of the trial it changes; in bold where it is beyond the "
                     "noise: Welch's t-test on the two trials' seeds puts it at p < 0.05.")
    claims = [f"- {r['label']}: {r['claim']}" for r in rows if r["claim"]]
    return "\n".join(lines + (["", "The document's claims:", *claims] if claims else []))


def _study_run(args, study) -> int:
    from tqdm import tqdm

    from .tune import run_study

    store = RunStore(args.checkpoints)
    store.write_root
    bar = None

    def on_event(e: dict) -> None:
        nonlocal bar
        if e["type"] == "plan":
            bar = tqdm(total=e["total_epochs"], initial=e["done_epochs"], unit="epoch", desc=study.name,
                       disable=args.json, dynamic_ncols=True, file=sys.stderr)
            if e["skipped"]:
                tqdm.write(f"{e['skipped']} of {e['trials']} trials already complete in the store", file=sys.stderr)
        elif e["type"] == "epoch":
            shown = " ".join(f"{k}={v:.4f}" for k, v in e["metrics"].items())
            tqdm.write(f"{e['label']}: epoch {e['epoch']}/{e['epochs']} {shown}", file=sys.stderr)
            bar.update(1)
        elif e["type"] == "trial" and e["status"] != "complete":
            tqdm.write(f"{e['label']}: {e['status']}", file=sys.stderr)

    command = "python -m fmnist_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    summary = run_study(study, store, address=args.address, max_concurrent=args.max_concurrent, epochs=args.epochs,
                        subset=args.subset, data_dir=args.data, device=args.device, storage=args.storage,
                        progress=on_event, command=command,
                        together={"auto": None, "yes": True, "no": False}[args.together])
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{study.name}: {summary['completed']} completed, {summary['skipped']} already complete, "
              f"{summary['failed']} failed, in {summary['wall_s']:.0f} s on Ray at {summary['ray_address']}")
        for f in summary["failed_trials"]:
            print(f"  failed: {f['label']} ({f['run_id']}): {f['error']}")
    return 1 if summary["failed"] else 0


def benchmark_harness():
    """The repository's benchmarks/harness.py (the reference loop and the timing): not part of the package."""
    import importlib.util

    path = REPOSITORY / "benchmarks" / "harness.py"
    if not path.is_file():
        raise RuntimeError(f"bench needs the repository's benchmarks/harness.py, which is not at {path}: "
                           "an installed package leaves it out; run bench from a clone of the repository")
    loaded = sys.modules.get("benchmarks.harness")
    if loaded is not None and Path(loaded.__file__).resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location("fmnist_benchmarks_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmd_bench(args) -> int:
    run_benchmark = benchmark_harness().run_benchmark

    result = run_benchmark(device=args.device, batches=args.batches, models=tuple(args.models.split(",")),
                           data_dir=args.data, reference=not args.no_reference, precision=args.precision,
                           progress=None if args.json else lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1) if args.json else result["summary"])
    return 0


def main(argv: list[str] | None = None) -> int:
    prog = "fmnist" if Path(sys.argv[0]).name == "fmnist" else "python -m fmnist_core"   # the console script
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (or resume) runs: the reference protocol's five by default")
    p.add_argument("--preset", default=None, help="a named spec (see `runs --presets`); default: the reference protocol")
    p.add_argument("--spec", default=None, help="a TOML spec file: optional `preset = NAME` plus spec fields")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="set a spec field, e.g. optimizer.lr=0.01 or encoder.bottleneck=256 (repeatable)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the spec's; the reference 50)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--seed", type=int, default=None, help="seed of the batch order, dropout and initial weights")
    p.add_argument("--models", default=None, help=f"comma-separated subset of {','.join(MODEL_NAMES)}")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                   help="fp32 (the spec default) or bf16 autocast (CUDA, or a CPU with bf16 units)")
    p.add_argument("--quiet", action="store_true", help="no progress bars; print only the run ids")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list the stored runs")
    p.add_argument("--json", action="store_true", help="one JSON array, one object per run")
    p.add_argument("--presets", action="store_true", help="list the presets instead")
    _add_common(p, data=False)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("study", help="the reference documents' studies: list, run (on Ray Tune), table")
    p.add_argument("verb", choices=("list", "run", "table"))
    p.add_argument("study", nargs="?", help="a study name (studies/NAME.toml) or a study file")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help="table: one Markdown table, ours beside the published")
    p.add_argument("--address", default=None, help="a Ray cluster's address (or RAY_ADDRESS); default: a local instance")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="trials at once (default: one per CPU, one thread each; fewer trials share the CPUs)")
    p.add_argument("--epochs", type=int, default=None, help="shrink every trial to N epochs (other runs)")
    p.add_argument("--subset", type=int, default=None, help="shrink every trial to N training images (other runs)")
    p.add_argument("--storage", default=None,
                   help="a folder every node of a cluster reaches: runs travel through Tune's checkpoints")
    p.add_argument("--together", choices=("auto", "yes", "no"), default="auto",
                   help="train stackable trials (seeds, lr, dropout, weight decay) as one stacked network: "
                        "auto = on a GPU only (on a 2-core CPU it is no faster; docs/performance-gpu.md)")
    _add_common(p)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("evaluate", help="test accuracy, loss, MSE and normalized confusion matrices")
    p.add_argument("--json", action="store_true")
    p.add_argument("--which", choices=("last", "best"), default="last", help="last epoch or best validation epoch")
    p.add_argument("--run", action="append", help="a run id (repeatable); default: the reference five")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("classify", help="classify image files with the reference four classifiers, or --run ones")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--which", choices=("last", "best"), default="last")
    p.add_argument("--run", action="append", help="a classifier run id (repeatable); default: the reference four")
    _add_common(p, data=False)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("bench", help="time our training loop against the reference tutorial loop")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batches", type=int, default=100, help="training batches timed per loop")
    p.add_argument("--models", default="finetune", help=f"comma-separated subset of {','.join(SCHEMES)}")
    p.add_argument("--no-reference", action="store_true", help="time only our loop")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="our loop's arithmetic: fp32, or bf16 autocast (CUDA, or a CPU with bf16 units)")
    _add_common(p)
    p.set_defaults(func=cmd_bench)

    from .analysis.cli import add_parsers as add_representation_parsers
    add_representation_parsers(sub, _add_common)      # features, similarity, probe, drift

    args = parser.parse_args(argv)
    if getattr(args, "epochs", None) is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.command == "study" and args.verb != "list" and not args.study:
        parser.error(f"study {args.verb} needs a study name or file (see `study list`)")
    try:
        rc = args.func(args)
        sys.stdout.flush()             # here, so a closed pipe is caught below and not at exit
        return rc
    except (DataError, CheckpointError, SpecError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs are saved; run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:            # the reader went away (`... | head`): stop quietly, as `cat` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
