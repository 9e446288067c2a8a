"""The GPU check of issue 27, in one go: correctness, the reference protocol, a study (side by side and
stacked), bf16, extra presets.

    benchmarks/gpu_check.sh --data .gpu-data [--extra-presets NAME[,NAME] --extra-seeds 0,1,2]
    benchmarks/gpu_check.sh --dry-run          # the same parts on the CPU, tiny: what CI runs

Parts, each under its own time cap and its own try/except (a failure is reported, the next part runs):

1. correctness: a short scratch run on CUDA trained whole, and again interrupted after epoch 1 and
   resumed; both evaluated; the resumed one is packed (gpu-correctness-run.tar.gz) so that
   `benchmarks/check_gpu_run.py gpu-correctness-run.tar.gz` evaluates it on a CPU. The same run is
   also trained eagerly (no CUDA graphs) for the speed of each path.
2. protocol: the reference protocol's five runs, 50 epochs, trained concurrently (fmnist_core/gpu.py:
   a thread and a stream per run, each step a CUDA graph): gpu-protocol.json with the wall time and
   each run's test figure beside the shipped CPU run's.
3. study: Table I at three seeds (15 runs) trained concurrently: gpu-study.json.
   together: the same 15 runs, each trial's seeds as one stacked network (fmnist_core/together.py),
   the stacks side by side: gpu-study-together.json.
4. bf16: the `precision-bf16` study's bf16 trial (reference scratch, precision bf16, seeds 0-2),
   packed (gpu-bf16-runs.tar.gz) to ship as history, with Welch's t against the shipped fp32 seeds.
5. extras: `--extra-presets` trained at `--extra-seeds`, packed (gpu-extra-runs.tar.gz); a preset
   this code does not know is reported, not fatal.

Writes to --out (the device's $OUT): gpu-check.json (every part's status and figures),
gpu-protocol.json, gpu-study.json, gpu-study-together.json, gpu-manifests.tar.gz (the manifests of
parts 2-3) and the three packs above; gpu_check.sh adds gpu-check.log. At most 9 files.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fmnist_core import cudagraph  # noqa: E402
from fmnist_core.data import load_fashion_mnist  # noqa: E402
from fmnist_core.gpu import Deadline, train_concurrently  # noqa: E402
from fmnist_core.presets import PRESETS, reference_specs, specs_for  # noqa: E402
from fmnist_core.runs import RunStore  # noqa: E402
from fmnist_core.train import train_run  # noqa: E402

SHIPPED = ROOT / "checkpoints"
CAPS = {"correctness": 50, "protocol": 170, "study": 150, "together": 150, "bf16": 70, "extras": 90}  # seconds
DRY = {"epochs": 1, "subset": 600}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _final(m: dict | None) -> dict:
    """The last epoch's test figure of a manifest: {"test_acc": x} or {"test_mse": x}."""
    if not m or not m.get("history"):
        return {}
    last = m["history"][-1]
    return {"test_acc": last["test_acc"]} if "test_acc" in last else {"test_mse": last["test_loss"]}


def _shipped(run_id: str) -> dict | None:
    path = SHIPPED / run_id / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _row(spec, m: dict | None, label: str | None = None) -> dict:
    """One run's line of a results file: ours beside the shipped CPU run of the same spec."""
    row = {"run": spec.run_id, "label": label or spec.name, "precision": spec.precision,
           "epochs_done": len(m["history"]) if m else 0, "epochs": spec.epochs,
           "complete": bool(m and m.get("complete"))}
    row.update(_final(m))
    if m and m.get("history"):
        secs = [r["seconds"] for r in m["history"]]
        row["median_epoch_s"] = round(statistics.median(secs), 3)
        row["wall_time_s"] = (m.get("provenance") or {}).get("wall_time_s")
    ref = _shipped(spec.run_id)
    if ref:
        row["shipped_cpu"] = _final(ref)
        if "test_acc" in row and "test_acc" in row["shipped_cpu"]:
            row["diff_pts"] = round(100 * (row["test_acc"] - row["shipped_cpu"]["test_acc"]), 2)
            row["within_0.7_pts"] = abs(row["diff_pts"]) <= 0.7
        elif "test_mse" in row and "test_mse" in row["shipped_cpu"]:
            row["mse_ratio"] = round(row["test_mse"] / row["shipped_cpu"]["test_mse"], 4)
    return row


PACK_LIMIT = 15 * 2 ** 20      # $OUT takes files of at most 16 MiB


def _pack(store_root: Path, run_ids: list[str], target: Path, limit: int = PACK_LIMIT) -> dict:
    """Run folders as one .tar.gz, paths <run id>/<file>. Whole folders while they fit in `limit`
    bytes (weights hardly compress); the runs after that with their manifest only (history)."""
    whole, manifest_only, used = [], [], 0
    with tarfile.open(target, "w:gz") as tar:
        for rid in run_ids:
            folder = store_root / rid
            if not folder.is_dir():
                continue
            files = [f for f in sorted(folder.iterdir())
                     if f.is_file() and f.name not in ("train.lock", "progress.json") and f.suffix != ".log"]
            size = sum(f.stat().st_size for f in files)
            if used + size > limit:
                files = [f for f in files if f.name == "manifest.json"]
                manifest_only.append(rid)
            else:
                whole.append(rid)
            used += sum(f.stat().st_size for f in files)
            for f in files:
                tar.add(f, arcname=f"{rid}/{f.name}")
    return {"file": target.name, "bytes": target.stat().st_size, "runs": whole, "manifest_only": manifest_only}


def _progress(event: dict) -> None:
    """A line per run at its start, at epochs 1, 10, 25 and 50, and at its end: enough to follow it."""
    kind = event.get("type")
    if kind == "start":
        log(f"    {event['run']}: {event['reason']}")
    elif kind == "epoch" and (event["record"]["epoch"] in (1, 10, 25) or event["record"]["epoch"] == event["epochs"]):
        r = event["record"]
        figure = f"test_acc {r['test_acc']:.4f}" if "test_acc" in r else f"test_mse {r['test_loss']:.5f}"
        log(f"    {event['run']}: epoch {r['epoch']}/{event['epochs']} {r['seconds']:.2f} s "
            f"({r['train_images_per_s']:.0f} train img/s), {figure}")


class Check:
    def __init__(self, args):
        self.args = args
        self.dry = args.dry_run
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work or tempfile.mkdtemp(prefix="fmnist-gpu-check-")).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.device = torch.device("cpu" if self.dry else "cuda")
        self.workers = 2 if self.dry else args.workers       # two threads on the CPU: the scheduling runs
        self.report: dict = {"parts": {}}
        self.t_start = time.monotonic()
        self.command = "benchmarks/gpu_check.sh " + " ".join(sys.argv[1:])

    def cap(self, part: str) -> float:
        if self.dry:               # no time caps in the dry run: a test's outcome never hangs on the clock
            return float("inf")
        if self.args.part_cap is not None:              # a part in a process of its own: the parent's cap
            return self.args.part_cap
        left = self.args.budget - (time.monotonic() - self.t_start)
        return max(5.0, min(CAPS[part], left))

    def store(self, name: str) -> RunStore:
        return RunStore(self.work / name)

    def train(self, specs, store: RunStore, cap: float, workers: int | None = None,
              snapshots: bool = False, together: bool = False) -> tuple[dict, list, float]:
        """Train concurrently under a deadline; (manifests by id, errors, wall seconds)."""
        errors: list[str] = []
        deadline = Deadline(cap, _progress)
        t0 = time.perf_counter()

        def on_error(spec, e):
            msg = f"{spec.run_id}: {type(e).__name__}: {e}"
            errors.append(msg)
            log("  " + msg)
            if not isinstance(e, Deadline.TimeUp):
                log("".join(traceback.format_exception(type(e), e, e.__traceback__)[-6:]))

        done = train_concurrently(list(specs), self.data, store, self.device, workers or self.workers,
                                  callback=deadline, command=self.command, on_error=on_error,
                                  snapshots=snapshots, together=together)
        _sync(self.device)
        return done, errors, time.perf_counter() - t0

    # ------------------------------------------------------------------------- parts
    def environment(self) -> dict:
        env = {"python": platform.python_version(), "torch": torch.__version__, "commit": _commit(),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "cpu_count": os.cpu_count(), "dry_run": self.dry, "device": str(self.device),
               "cuda_graphs": cudagraph.enabled(), "workers": self.workers}
        if self.device.type == "cuda":
            env["device_name"] = torch.cuda.get_device_name(self.device)
            env["cuda"] = torch.version.cuda
            env["cudnn"] = torch.backends.cudnn.version()
            env["bf16_supported"] = torch.cuda.is_bf16_supported()
        return env

    def part_correctness(self) -> dict:
        cap = self.cap("correctness")
        base = reference_specs()["scratch"]
        spec = base.with_overrides({"epochs": 2, "subset": 600} if self.dry else {"epochs": 2, "subset": 12000})
        deadline = Deadline(cap)
        res: dict = {"spec": spec.run_id}
        t0 = time.perf_counter()
        whole = train_run(spec, self.data, self.store("whole"), self.device, callback=deadline)
        res["whole_s"] = round(time.perf_counter() - t0, 2)

        class Stop(Exception):
            pass

        def stop_after_epoch_one(event):
            deadline(event)
            if event["type"] == "batch" and event["epoch"] == 2:
                raise Stop()
        resumed_store = self.store("resumed")
        if spec.epochs >= 2:
            try:
                train_run(spec, self.data, resumed_store, self.device, callback=stop_after_epoch_one)
            except Stop:
                pass
            partial = resumed_store.manifest(spec.run_id)
            res["interrupted_after_epochs"] = len(partial["history"])
            assert len(partial["history"]) == 1 and not partial["complete"] and "optim" in partial["roles"]
        events = []
        resumed = train_run(spec, self.data, resumed_store, self.device,
                            callback=lambda e: (deadline(e), events.append(e)))
        res["resumed_from_epoch"] = next(e["start_epoch"] for e in events if e["type"] == "start")
        res["whole"] = [{k: r[k] for k in ("epoch", "val_loss", "test_acc", "seconds")} for r in whole["history"]]
        res["resumed"] = [{k: r[k] for k in ("epoch", "val_loss", "test_acc", "seconds")} for r in resumed["history"]]
        res["val_loss_rel_diff_last"] = abs(resumed["history"][-1]["val_loss"] / whole["history"][-1]["val_loss"] - 1)
        # evaluate the stored weights on the device: the recorded test accuracy again
        from fmnist_core.evaluate import classifier_report
        from fmnist_core.train import split_for
        model = resumed_store.load_model(spec.run_id, "last", self.device)
        tensors = split_for(spec, self.data, self.device)          # the run's own (shrunk) test set
        rep = classifier_report(model, tensors.test_x, tensors.test_y)
        res["evaluate_test_accuracy"] = rep["test_accuracy"]
        res["recorded_test_acc"] = resumed["history"][-1]["test_acc"]
        res["evaluate_matches_record"] = abs(rep["test_accuracy"] - res["recorded_test_acc"]) <= 2e-3
        # the same run with eager steps (no CUDA graphs): the speed of each path
        if self.device.type == "cuda":
            os.environ["FMNIST_CUDA_GRAPHS"] = "0"
            try:
                t0 = time.perf_counter()
                eager = train_run(spec, self.data, self.store("eager"), self.device, callback=deadline)
                res["eager_s"] = round(time.perf_counter() - t0, 2)
                res["eager"] = [{k: r[k] for k in ("epoch", "val_loss", "test_acc", "seconds", "train_images_per_s")}
                                for r in eager["history"]]
            finally:
                os.environ.pop("FMNIST_CUDA_GRAPHS", None)
            res["graphed_train_images_per_s"] = [r["train_images_per_s"] for r in whole["history"]]
        res["pack"] = _pack(resumed_store.root, [spec.run_id], self.out / "gpu-correctness-run.tar.gz")
        res["cpu_check_command"] = ("tar -xzf gpu-correctness-run.tar.gz -C /tmp/gpu-run && .venv/bin/python "
                                    "benchmarks/check_gpu_run.py /tmp/gpu-run " + spec.run_id)
        res["cudagraph_fallbacks"] = list(cudagraph.fallbacks)
        log(f"  correctness: whole {res['whole_s']} s, resumed from epoch {res['resumed_from_epoch']}, "
            f"val_loss rel diff {res['val_loss_rel_diff_last']:.2e}, evaluate {rep['test_accuracy']:.4f} "
            f"(recorded {res['recorded_test_acc']:.4f})")
        return res

    def part_protocol(self) -> dict:
        cap = self.cap("protocol")
        specs = list(reference_specs(DRY if self.dry else None).values())
        store = self.store("protocol")
        done, errors, wall = self.train(specs, store, cap, snapshots=True)
        if errors and not any("TimeUp" in e for e in errors) and \
                (self.dry or time.monotonic() - self.t_start < self.args.budget - 60):
            log("  protocol: retrying the failed runs one at a time, eagerly")
            os.environ["FMNIST_CUDA_GRAPHS"] = "0"
            try:
                more, errors2, wall2 = self.train(specs, store, self.cap("protocol"), workers=1)
            finally:
                os.environ.pop("FMNIST_CUDA_GRAPHS", None)
            done.update(more)
            errors += [f"retry: {e}" for e in errors2]
            wall += wall2
        rows = [_row(s, store.manifest(s.run_id), name) for name, s in zip(reference_specs(), specs)]
        rows_done = [r for r in rows if r["epochs_done"]]
        if rows_done and not all(r["complete"] for r in rows):     # cut by the cap: what 50 epochs would take
            result_note = "incomplete: cut by the time cap"
        else:
            result_note = None
        result = self._result("protocol", wall, rows, errors)
        result["all_within_0.7_pts"] = all(r.get("within_0.7_pts", False) for r in rows if "test_acc" in r)
        result["note"] = result_note
        (self.out / "gpu-protocol.json").write_text(json.dumps(result, indent=1) + "\n")
        log(f"  protocol: wall {wall:.1f} s; " + "; ".join(
            f"{r['label']} {r.get('test_acc', r.get('test_mse'))} (cpu {r.get('shipped_cpu')})" for r in rows))
        return result

    def part_study(self, together: bool = False) -> dict:
        from fmnist_core.study import load_study
        name = "together" if together else "study"
        cap = self.cap(name)
        study = load_study("r2026-table1")
        items = study.specs(**(DRY if self.dry else {}))
        if self.dry:        # the code path, quickly: the autoencoder and two classifiers, one from it
            seeds = (0, 1) if together else (0,)                     # two seeds make stacks of two
            items = [i for i in items if i[1] in seeds and i[0].label in ("autoencoder", "finetune", "frozen_random")]
        store = self.store(name)
        done, errors, wall = self.train([s for _, _, s in items], store, cap, together=together)
        rows = []
        for trial, seed, spec in items:
            m = store.manifest(spec.run_id)
            rows.append({**_row(spec, m, trial.label), "seed": seed,
                         "trained_together": len(((m or {}).get("provenance") or {}).get("trained_together") or [])})
        result = self._result(f"study r2026-table1 at 3 seeds{', stacked per trial' if together else ''}",
                              wall, rows, errors)
        by_trial: dict = {}
        for r in rows:
            if "test_acc" in r:
                by_trial.setdefault(r["label"], []).append(r)
        result["mean_test_acc"] = {k: {"gpu": round(statistics.fmean(x["test_acc"] for x in v), 4),
                                       "shipped_cpu": round(statistics.fmean(x["shipped_cpu"]["test_acc"] for x in v), 4)
                                       if all("shipped_cpu" in x for x in v) else None}
                                   for k, v in by_trial.items()}
        (self.out / f"gpu-{'study-together' if together else 'study'}.json").write_text(
            json.dumps(result, indent=1) + "\n")
        log(f"  {name}: {len(items)} runs, wall {wall:.1f} s, {sum(r['complete'] for r in rows)} complete")
        return result

    def part_together(self) -> dict:
        """The same study with each trial's seeds trained as one stacked network (together.py)."""
        return self.part_study(together=True)

    def part_bf16(self) -> dict:
        from fmnist_core.precision import PrecisionError, check
        from fmnist_core.study import gain_test, load_study
        try:
            check("bf16", self.device)
        except PrecisionError as e:
            return {"status": "skipped", "why": str(e)}
        cap = self.cap("bf16")
        study = load_study("precision-bf16")
        items = study.specs(**(DRY if self.dry else {}))
        bf16 = [(seed, spec) for t, seed, spec in items if spec.precision == "bf16" and (seed < 1 or not self.dry)]
        fp32 = [(seed, spec) for t, seed, spec in items if spec.precision == "fp32"]
        store = self.store("bf16")
        done, errors, wall = self.train([s for _, s in bf16], store, cap)
        rows = [{**_row(s, store.manifest(s.run_id)), "seed": seed} for seed, s in bf16]
        res = {"wall_s": round(wall, 1), "runs": rows, "errors": errors}
        ours = [r["test_acc"] for r in rows if r["complete"]]
        shipped = [m["history"][-1]["test_acc"] for m in (_shipped(s.run_id) for _, s in fp32) if m]
        res["bf16_test_acc"], res["fp32_shipped_test_acc"] = ours, shipped
        if len(ours) >= 2 and len(shipped) >= 2:
            gain = statistics.fmean(ours) - statistics.fmean(shipped)
            try:
                noise, p = gain_test(gain, (statistics.stdev(ours), len(ours)), (statistics.stdev(shipped), len(shipped)))
                res["welch"] = {"gain_pts": round(100 * gain, 3), "noise_pts": round(100 * noise, 3), "p": round(p, 4)}
            except Exception as e:                     # scipy missing: the figures are still there
                res["welch"] = {"gain_pts": round(100 * gain, 3), "error": str(e)}
        res["pack"] = _pack(store.root, [s.run_id for _, s in bf16], self.out / "gpu-bf16-runs.tar.gz")
        res["ship_command"] = ("mkdir -p /tmp/bf16 && tar -xzf gpu-bf16-runs.tar.gz -C /tmp/bf16 && .venv/bin/python "
                               "scripts/ship_history.py precision-bf16 --source /tmp/bf16 --seeds 0,1,2")
        log(f"  bf16: {ours} against fp32 {shipped}: {res.get('welch')}")
        return res

    def part_extras(self) -> dict:
        names = [n for n in (self.args.extra_presets or "").split(",") if n]
        if not names:
            return {"status": "skipped", "why": "no --extra-presets"}
        seeds = [int(s) for s in self.args.extra_seeds.split(",") if s != ""]
        cap = self.cap("extras")
        res: dict = {"presets": {}}
        specs, seen = [], set()
        for name in names:
            if name not in PRESETS:
                res["presets"][name] = f"no preset {name!r} in this code (not merged yet?); skipped"
                log("  extras: " + res["presets"][name])
                continue
            res["presets"][name] = "trained"
            for seed in seeds:
                for spec in specs_for(name, {"seed": seed, **(DRY if self.dry else {})}):
                    if spec.run_id not in seen:
                        seen.add(spec.run_id)
                        specs.append(spec)
        if not specs:
            return res
        specs.sort(key=lambda s: s.kind != "autoencoder")
        store = self.store("extras")
        done, errors, wall = self.train(specs, store, cap)
        res.update(wall_s=round(wall, 1), errors=errors, runs=[_row(s, store.manifest(s.run_id)) for s in specs])
        res["pack"] = _pack(store.root, [s.run_id for s in specs], self.out / "gpu-extra-runs.tar.gz")
        return res

    def _result(self, what: str, wall: float, rows: list, errors: list) -> dict:
        return {"what": what, "device": self.report["environment"].get("device_name", str(self.device)),
                "torch": torch.__version__, "commit": self.report["environment"]["commit"],
                "date": self.report["environment"]["date"], "command": self.command, "dry_run": self.dry,
                "wall_s": round(wall, 1), "workers": self.workers, "cuda_graphs": cudagraph.enabled(),
                "cudagraph_fallbacks": list(cudagraph.fallbacks), "errors": errors, "runs": rows}

    # ------------------------------------------------------------------------- driver
    PARTS = ("correctness", "protocol", "study", "together", "bf16", "extras")

    def _load_data(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        t0 = time.perf_counter()
        self.data = load_fashion_mnist(self.args.data).to(self.device)
        log(f"data from {self.data.source} on {self.device} in {time.perf_counter() - t0:.1f} s")

    def run_part(self, name: str) -> dict:
        """One part, its failure caught and reported; the data loaded first where not yet."""
        t0 = time.perf_counter()
        try:
            if not hasattr(self, "data"):
                self._load_data()
            res = getattr(self, f"part_{name}")()
            res.setdefault("status", "ok" if not res.get("errors") else "errors")
        except Exception as e:
            res = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                   "traceback": traceback.format_exc()[-3000:]}
            log(f"  {name} FAILED: {res['error']}\n{res['traceback']}")
        res["part_s"] = round(time.perf_counter() - t0, 1)
        return res

    def isolated(self, name: str, cap: float) -> dict:
        """A part in a process of its own (a sticky CUDA error or a hang costs that part only)."""
        result = self.work / f"part-{name}.json"
        result.unlink(missing_ok=True)
        argv = [sys.executable, "-u", str(Path(__file__).resolve()), "--part", name, "--out", str(self.out),
                "--work", str(self.work), "--part-cap", str(cap), "--workers", str(self.args.workers),
                "--extra-presets", self.args.extra_presets, "--extra-seeds", self.args.extra_seeds]
        if self.args.data:
            argv += ["--data", self.args.data]
        if self.dry:
            argv.append("--dry-run")
        t0 = time.perf_counter()
        limit = None if self.dry else cap + 60          # the part stops itself at its cap; then a kill
        try:
            rc = subprocess.run(argv, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = "killed after its time limit"
        if result.is_file():
            return json.loads(result.read_text())
        return {"status": "failed", "error": f"the part's process ended ({rc}) without a result; see the log above",
                "part_s": round(time.perf_counter() - t0, 1)}

    def run(self) -> int:
        self.report["environment"] = env = self.environment()
        log(f"environment: {json.dumps(env)}")
        if self.args.part:                               # a child of an isolated run: one part, its result
            res = self.run_part(self.args.part)
            (self.work / f"part-{self.args.part}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
            return 0
        skip = set((self.args.skip or "").split(","))
        for name in self.PARTS:
            if name in skip:
                self.report["parts"][name] = {"status": "skipped", "why": "--skip"}
                continue
            left = self.args.budget - (time.monotonic() - self.t_start)
            if left < 10 and not self.dry:
                self.report["parts"][name] = {"status": "skipped", "why": f"time budget spent ({left:.0f} s left)"}
                continue
            cap = self.cap(name)
            log(f"part {name} (cap {cap:.0f} s{', own process' if self.args.isolate else ''})")
            self.report["parts"][name] = self.isolated(name, cap) if self.args.isolate else self.run_part(name)
            self._write()
        try:
            found = sorted(p for part in ("protocol", "study", "together") for p in (self.work / part).glob("*/manifest.json"))
            if found:
                with tarfile.open(self.out / "gpu-manifests.tar.gz", "w:gz") as tar:
                    for path in found:
                        tar.add(path, arcname=str(path.relative_to(self.work)))
        except Exception as e:
            self.report["manifests_error"] = str(e)
        self.report["total_s"] = round(time.monotonic() - self.t_start, 1)
        self._write()
        self._summary()
        if getattr(self.args, "remove_work", False) or (not self.args.work and not self.args.keep):
            shutil.rmtree(self.work, ignore_errors=True)
        return 0 if all(p.get("status") in ("ok", "skipped") for p in self.report["parts"].values()) else 1

    def _write(self) -> None:
        (self.out / "gpu-check.json").write_text(json.dumps(self.report, indent=1, default=str) + "\n")

    def _summary(self) -> None:
        lines = ["", "=" * 78, f"GPU check summary ({self.report['environment'].get('device_name', self.device)}, "
                 f"torch {torch.__version__}, total {self.report['total_s']} s)", "-" * 78]
        for name, p in self.report["parts"].items():
            detail = ""
            if name == "correctness" and "whole_s" in p:
                detail = (f"resumed from epoch {p.get('resumed_from_epoch')}, val_loss diff "
                          f"{p.get('val_loss_rel_diff_last', float('nan')):.1e}, "
                          f"eval = record: {p.get('evaluate_matches_record')}")
            elif name in ("protocol", "study", "together") and "wall_s" in p:
                worst = max((abs(r.get("diff_pts", 0)) for r in p["runs"]), default=0)
                done = sum(r["complete"] for r in p["runs"])
                detail = f"wall {p['wall_s']} s, {done}/{len(p['runs'])} complete, worst |diff| {worst} pts"
            elif name == "bf16" and "runs" in p:
                detail = f"wall {p['wall_s']} s, acc {p.get('bf16_test_acc')}, welch {p.get('welch')}"
            elif name == "extras":
                detail = json.dumps(p.get("presets", p.get("why")))[:60]
            if p.get("error"):
                detail = p["error"][:70]
            lines.append(f"{name:<12} {p.get('status', '?'):<8} {p.get('part_s', '')!s:>7} s  {detail}")
        lines.append("-" * 78)
        lines.append("files: " + ", ".join(sorted(f.name for f in self.out.iterdir())))
        print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="folder with the Fashion-MNIST IDX files (e.g. .gpu-data)")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks" / "results" / "gpu-out"),
                    help="where the results go (default $OUT)")
    ap.add_argument("--work", default=None, help="run stores' folder (default: a temporary one, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run stores")
    ap.add_argument("--dry-run", action="store_true", help="every part on the CPU, one epoch on 600 images")
    ap.add_argument("--budget", type=float, default=470, help="seconds for all parts together (default 470)")
    ap.add_argument("--workers", type=int, default=16, help="runs trained at once on the GPU (default 16)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip")
    ap.add_argument("--extra-presets", default="", help="NAME[,NAME]: presets to train too, packed")
    ap.add_argument("--extra-seeds", default="0", help="seeds of the extra presets (default 0)")
    ap.add_argument("--cap", action="append", default=[], metavar="PART=SECONDS",
                    help="another time cap for one part, e.g. --cap extras=150 (repeatable)")
    ap.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                    help="each part in a process of its own (default: yes on the GPU, no in the dry run)")
    ap.add_argument("--part", default=None, choices=Check.PARTS, help=argparse.SUPPRESS)
    ap.add_argument("--part-cap", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for item in args.cap:
        part, _, seconds = item.partition("=")
        if part not in CAPS or not seconds.replace(".", "", 1).isdigit():
            ap.error(f"--cap {item!r}: expected PART=SECONDS with PART one of {', '.join(CAPS)}")
        CAPS[part] = float(seconds)
    if args.isolate is None:
        args.isolate = not args.dry_run
    if args.isolate and not args.work:                   # the parts' processes share one work folder
        args.work = tempfile.mkdtemp(prefix="fmnist-gpu-check-")
        args.remove_work = not args.keep
    if not args.dry_run and not torch.cuda.is_available():
        print("error: no CUDA GPU is visible; use --dry-run to run the check on the CPU", file=sys.stderr)
        return 2
    return Check(args).run()


if __name__ == "__main__":
    sys.exit(main())
