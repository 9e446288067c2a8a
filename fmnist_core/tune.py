"""Running a study's trials on Ray Tune: the one module that talks to Ray.

Each trial is one run of the store, trained by `train.train_run` inside a Tune trial:

- **Where:** by default a Ray instance of its own (`address="local"`, no dashboard, no usage
  stats), so a stray `ray start` cluster is never joined by accident; a cluster when given an
  address (or `RAY_ADDRESS`).
- **Files:** without `storage`, trials write straight into the store's folder (one machine, or a
  store on storage every node mounts at the same path). With `storage` (a folder or URI every node
  reaches, Tune's `storage_path`), a trial trains into a scratch store on its node, reports the run's
  folder as a Tune checkpoint after every epoch, resumes from its last checkpoint when retried, and
  the driver copies each finished run into its store, verified.
- **Resuming:** trials complete in the store are skipped; partial ones resume from their last
  epoch (train_run does). A study stopped at any point and started again finishes what is left.
- **Order:** autoencoder trials first; a classifier that starts from one runs in a later wave.
- **Failures:** a failed trial is retried once (Tune's FailureConfig), then reported; the others go on.
- **Together:** with `together`, fresh runs of a wave that stack (`together.groups`: one architecture,
  differing in seed, lr, dropout or weight decay) train as one Tune trial, one stacked network
  (`together.train_together`); each run still gets its own manifest and files. Only without
  `storage` (the trial writes into the store). `None` decides by device: on CUDA yes, on a CPU no
  (docs/performance-gpu.md: on 2 cores two single-thread trials side by side are as fast).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from .runs import MANIFEST, RunStore   # noqa: E402
from .spec import RunSpec              # noqa: E402
from .store import CheckpointError     # noqa: E402
from .study import Study, acquire_study  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _trainable(trial_config: dict) -> None:
    """One Tune trial: train (or resume) one run, reporting every epoch."""
    import torch
    from ray import tune

    from .data import load_fashion_mnist
    from .train import resolve_device, train_run

    config = trial_config["cfg"]
    torch.set_num_threads(max(1, int(config["cpus"])))
    spec = RunSpec.from_dict(config["spec"])
    stacked = [RunSpec.from_dict(d) for d in config.get("together") or []]
    if config.get("storage"):
        # Train in a scratch store on this node; the run folder travels through Tune's checkpoints.
        store = RunStore(tempfile.mkdtemp(prefix="fmnist-trial-"))
        if config.get("deps"):                       # the autoencoder a classifier starts from
            _unpack(config["deps"], store.root)
        ckpt = tune.get_checkpoint()                 # a retried trial goes on from its last epoch
        if ckpt is not None:
            with ckpt.as_directory() as d:
                _unpack(d, store.root)
    else:
        store = RunStore(config["store"])
    data = load_fashion_mnist(config.get("data"))
    device = resolve_device(config.get("device", "auto"))
    if config.get("fail_once") and not (Path(config["fail_once"]) / spec.run_id).exists():
        Path(config["fail_once"], spec.run_id).mkdir(parents=True, exist_ok=True)
        raise RuntimeError("failing once on purpose (test hook)")

    def on_event(event: dict) -> None:
        if event["type"] != "epoch":
            return
        metrics = {"run_id": event["run"], "epoch": event["record"]["epoch"], "epochs": event["epochs"],
                   **{k: v for k, v in event["record"].items() if isinstance(v, (int, float))}}
        if config.get("storage"):
            with tempfile.TemporaryDirectory() as d:
                shutil.copytree(store.folder(spec.run_id), Path(d) / spec.run_id,
                                ignore=shutil.ignore_patterns("train.lock", "progress.json", ".*.tmp"))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)

    if stacked and all(store.find(s) is None for s in stacked):
        from .together import train_together
        train_together(stacked, data, store, device, on_event, config.get("command"))
    else:                                  # alone, or a retried stack: each run resumes where it stopped
        for s in stacked or [spec]:
            train_run(s, data, store, device, on_event, config.get("command"), snapshots=False)
    tune.report({"run_id": spec.run_id, "epoch": spec.epochs, "epochs": spec.epochs, "done": True})


def _trial_name(trial) -> str:
    return f"{trial.config['cfg']['spec']['name']}-{trial.trial_id}"


def _unpack(src: str | Path, root: Path) -> None:
    """Copy run folders found in `src` into store root `root`."""
    for folder in Path(src).iterdir():
        if (folder / MANIFEST).is_file() and not (root / folder.name).exists():
            shutil.copytree(folder, root / folder.name)


def _adopt(store: RunStore, checkpoint_dir: str | Path, run_id: str) -> bool:
    """Copy a finished run from a trial's checkpoint into the store, verified; True if it landed."""
    src = Path(checkpoint_dir) / run_id
    if not (src / MANIFEST).is_file() or store.manifest(run_id) is not None:
        return False
    staging = store.write_root / f".incoming-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging)
    probe = RunStore(staging.parent)
    os.replace(staging, store.write_root / run_id)
    try:
        probe.verify(run_id)
    except CheckpointError:
        shutil.rmtree(store.write_root / run_id, ignore_errors=True)
        raise
    return True


def _waves(items: list[tuple[object, int, RunSpec]]) -> list[list[tuple[object, int, RunSpec]]]:
    """Trials in waves: each after the autoencoders it starts from."""
    waves: list[list] = []
    level: dict[str, int] = {}
    for item in items:
        spec = item[2]
        depth = level.get(spec.pretrained_from, -1) + 1     # 0 unless it starts from an autoencoder here
        level[spec.run_id] = depth
        while len(waves) <= depth:
            waves.append([])
        waves[depth].append(item)
    return waves


def run_study(study: Study, store: RunStore, address: str | None = None, max_concurrent: int | None = None,
              epochs: int | None = None, subset: int | None = None, data_dir: str | None = None,
              device: str = "auto", storage: str | None = None, cpus_per_trial: float | None = None,
              progress: Callable[[dict], None] | None = None, command: str | None = None,
              fail_once_dir: str | None = None, together: bool | None = None) -> dict:
    """Run every trial of `study` not yet complete in `store`; returns the summary `study run --json` prints.

    `progress` receives {"type": "epoch", "label", "run_id", "epoch", "epochs", "metrics"} per finished
    epoch of any trial, {"type": "trial", "label", "run_id", "status"} when one ends, and one
    {"type": "plan", "total_epochs", "done_epochs", "trials"} first.
    Raises StudyBusy, at once, when another live process runs the same study on the same store.
    """
    import logging

    for name in ("ray", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)
    say = progress or (lambda event: None)
    t0 = time.time()
    # One driver per study and store (StudyBusy otherwise): a second user sees this one's progress.
    lock = acquire_study(store, study.name, {"started": t0, "epochs": epochs, "subset": subset,
                                             "address": address, "command": command})
    try:
        if together and storage:
            raise ValueError("trials trained together write into the store: leave out storage, or together")
        if together is None:
            import torch
            together = not storage and (device.startswith("cuda") or device == "auto" and torch.cuda.is_available())
        return _run_study(study, store, address, max_concurrent, epochs, subset, data_dir, device, storage,
                          cpus_per_trial, say, command, fail_once_dir, t0, together)
    finally:
        lock.release()


def _units(wave: list, store: RunStore, together: bool) -> list[list]:
    """The wave's trials as Tune trials: stackable fresh runs in one where `together`, else one each."""
    if not together:
        return [[item] for item in wave]
    from .together import units
    by_id = {item[2].run_id: item for item in wave}
    return [[by_id[s.run_id] for s in unit] for unit in units([item[2] for item in wave], store)]


def _run_study(study, store, address, max_concurrent, epochs, subset, data_dir, device, storage, cpus_per_trial,
               say, command, fail_once_dir, t0, together=False) -> dict:
    import ray
    from ray import tune

    items = study.specs(epochs, subset)
    labels = {spec.run_id: f"{t.label}" + (f" (seed {seed})" if study.seeds > 1 else "") for t, seed, spec in items}
    skipped, todo = [], []
    for item in items:
        rid = store.find(item[2])
        m = store.manifest(rid) if rid else None
        (skipped if m is not None and m["complete"] else todo).append(item)
    store_root = str(store.write_root.resolve())
    done_epochs = sum(len((store.manifest(store.find(s) or s.run_id) or {"history": []})["history"])
                      for _, _, s in todo)
    say({"type": "plan", "trials": len(items), "skipped": len(skipped),
         "total_epochs": sum(s.epochs for _, _, s in todo), "done_epochs": done_epochs})
    summary = {"study": study.name, "trials": len(items), "completed": 0, "failed": 0, "skipped": len(skipped),
               "wall_s": 0.0, "ray_address": None, "failed_trials": [], "together": []}
    if not todo:
        summary["wall_s"] = round(time.time() - t0, 1)
        return summary

    address = address or os.environ.get("RAY_ADDRESS")
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        [str(PROJECT_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
        "RAY_USAGE_STATS_ENABLED": "0"}}
    we_started = not ray.is_initialized()
    if we_started:
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(address="local", include_dashboard=False, runtime_env=runtime_env, log_to_driver=False,
                     num_cpus=os.cpu_count())
    try:
        ctx = ray.get_runtime_context()
        summary["ray_address"] = getattr(ctx, "gcs_address", None) or address or "local"
        total_cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        storage_path = storage or tempfile.mkdtemp(prefix="fmnist-tune-")   # Tune's own state, not read back

        class Reporter(tune.Callback):
            def on_trial_result(self, iteration, trials, trial, result, **info):
                if result.get("done"):
                    return
                rid = result.get("run_id")
                say({"type": "epoch", "label": labels.get(rid, rid), "run_id": rid, "epoch": result.get("epoch"),
                     "epochs": result.get("epochs"),
                     "metrics": {k: result[k] for k in ("val_loss", "val_acc", "test_acc", "test_loss") if k in result}})

        for wave in _waves(todo):
            units = _units(wave, store, together)
            summary["together"] += [[spec.run_id for _, _, spec in unit] for unit in units if len(unit) > 1]
            # One trial per CPU, each with one thread, beats one trial with every thread on this 2-core
            # machine (benchmarks/ray_overhead.py --placement); a wave of fewer trials shares the CPUs.
            concurrent = max_concurrent or min(total_cpus, len(units))
            cpus = cpus_per_trial or float(max(1, total_cpus // concurrent))
            deps = {}
            if storage:
                # The autoencoders this wave starts from, where every node reaches them.
                for _, _, spec in wave:
                    if spec.pretrained_from and store.folder(spec.pretrained_from):
                        target = Path(storage) / "deps" / spec.run_id
                        shutil.rmtree(target, ignore_errors=True)
                        shutil.copytree(store.folder(spec.pretrained_from), target / spec.pretrained_from,
                                        ignore=shutil.ignore_patterns("train.lock", "progress.json"))
                        deps[spec.run_id] = str(target)
            configs = [{"spec": unit[0][2].to_dict(), "store": store_root, "data": data_dir, "device": device,
                        "cpus": cpus, "storage": storage, "command": command, "fail_once": fail_once_dir,
                        "deps": deps.get(unit[0][2].run_id),
                        "together": [s.to_dict() for _, _, s in unit] if len(unit) > 1 else None}
                       for unit in units]
            tuner = tune.Tuner(
                tune.with_resources(_trainable, {"cpu": cpus}),
                param_space={"cfg": tune.grid_search(configs)},
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True,
                                            trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
                run_config=tune.RunConfig(
                    name=f"{study.name}-{int(time.time())}", storage_path=storage_path, verbose=0,
                    failure_config=tune.FailureConfig(max_failures=1), callbacks=[Reporter()],
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
            )
            results = tuner.fit()
            for r in results:
                cfg = r.config["cfg"]
                for d in cfg.get("together") or [cfg["spec"]]:
                    spec = RunSpec.from_dict(d)
                    rid = spec.run_id
                    if storage and r.checkpoint is not None:
                        with r.checkpoint.as_directory() as folder:
                            _adopt(store, folder, rid)
                    m = store.manifest(store.find(spec) or rid)
                    ok = r.error is None and m is not None and m["complete"]
                    summary["completed" if ok else "failed"] += 1
                    if not ok:
                        summary["failed_trials"].append({"label": labels[rid], "run_id": rid, "error": str(
                            r.error).splitlines()[-1] if r.error else "incomplete"})
                    say({"type": "trial", "label": labels[rid], "run_id": rid,
                         "status": "complete" if ok else "failed"})
    finally:
        if we_started:
            ray.shutdown()
        if not storage and "storage_path" in locals():
            shutil.rmtree(storage_path, ignore_errors=True)
    summary["wall_s"] = round(time.time() - t0, 1)
    return summary
