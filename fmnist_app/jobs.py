"""Training runs and studies as background processes that outlive the page: plan, start, watch, stop.

Every start or stop goes through here, and each refuses in public mode (`fmnist_app.public`), so a
page that forgot to hide a control still starts nothing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fmnist_app.cache import store, study_named
from fmnist_app.public import is_public
from fmnist_app.routing import ROOT
from fmnist_core import CheckpointError
from fmnist_core.presets import PRESETS, specs_for

REFERENCE_PROTOCOL = "reference protocol (five runs)"
PUBLIC_REFUSAL = "This is a public demo: training and studies are switched off here."


def allowed() -> bool:
    """Whether this app may start or stop training and studies (not in public mode)."""
    return not is_public()


# ---- training runs ---------------------------------------------------------------------------
def training_runs() -> list[dict]:
    """The progress (pid, run, epoch, batch, batches, epochs, started) of every run training now,
    those in their first epoch (no manifest yet) included."""
    s = store()
    return [{"run": rid, **(s.progress(rid) or {})} for rid in s.training_now()]


def preset_fields(name: str) -> dict:
    """The form's fields with the preset's values (the reference protocol: the reference autoencoder's)."""
    spec = PRESETS["reference-autoencoder" if name == REFERENCE_PROTOCOL else name].spec
    return {"epochs": spec.epochs, "subset": spec.subset, "seed": spec.seed, "batch_size": spec.batch_size,
            "optimizer.name": spec.optimizer.name, "optimizer.lr": spec.optimizer.lr,
            "encoder.dropout": spec.encoder.dropout, "encoder.bottleneck": spec.encoder.bottleneck}


def plan(name: str, fields: dict) -> tuple[dict, list[str]]:
    """(overrides that differ from the preset, the run ids training them makes); SpecError if invalid."""
    base = preset_fields(name)
    overrides = {k: v for k, v in fields.items() if v != base[k]}
    if name == REFERENCE_PROTOCOL:
        from fmnist_core.presets import reference_specs
        specs = list(reference_specs(overrides).values())
    else:
        specs = specs_for(name, overrides)
    return overrides, [s.run_id for s in specs]


def start_training(name: str, overrides: dict, device: str) -> str:
    """Start `python -m fmnist_core train` as a background process that outlives the page.

    Each run's own lock decides: if another process trains one of them, this one exits at once
    (code 3) and the page keeps showing the run already in progress.
    """
    if not allowed():
        return PUBLIC_REFUSAL
    try:
        root = store().write_root
    except CheckpointError as e:
        return f"Cannot train: {e}"
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--device", device, "--checkpoints", str(root), "--quiet"]
    if name != REFERENCE_PROTOCOL:
        cmd += ["--preset", name]
    for k, v in overrides.items():
        cmd += ["--set", f"{k}={'none' if v is None else v}"]     # parsed as TOML; a bare word stays a string
    rc, last_line = _launch(cmd, root / "train.log", started=lambda proc: False, wait_s=1.0)
    if rc == 3:
        return "One of these runs is already training; its progress is shown below."
    if rc not in (None, 0):
        return f"Training did not start: {last_line}"
    return "Training started."


def stop_training(pid: int) -> str:
    if not allowed():
        return PUBLIC_REFUSAL
    try:
        os.kill(int(pid), signal.SIGTERM)   # the run saves nothing half-done: finished epochs stay
    except OSError as e:
        return f"Could not stop process {pid}: {e.strerror}"
    return "Stopping: the current epoch is abandoned, finished epochs are kept."


def _launch(cmd: list[str], log_path: Path, started, wait_s: float) -> tuple[int | None, str]:
    """Start `cmd` in a session of its own (it outlives the page and its stop signal reaches its
    children), its output appended to `log_path`; wait up to `wait_s` seconds until `started(proc)`
    or it exits. Returns (exit code, None while it runs; the log's last line)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and proc.poll() is None and not started(proc):
        time.sleep(0.2)
    rc = proc.poll()
    last = log_path.read_text(errors="replace").strip().splitlines()[-1:] if rc not in (None, 0) else []
    return rc, (last or ["?"])[0]


# ---- studies ---------------------------------------------------------------------------------
def running_study(name: str) -> dict | None:
    from fmnist_core.study import running_study as _running
    try:
        return _running(store(), name)
    except CheckpointError:
        return None


def study_progress(name: str, epochs: int | None, subset: int | None) -> list[dict]:
    """Per run of the study at this size: label, seed, run id, status, epoch, epochs, metric, value."""
    from fmnist_core.study import trial_status
    return trial_status(study_named(name), store(), epochs, subset)


def study_sizes(name: str) -> list[tuple]:
    from fmnist_core.study import study_sizes as _sizes
    return _sizes(store(), name)


def start_study(name: str, epochs: int | None, subset: int | None) -> str:
    """Start `python -m fmnist_core study run NAME` as a background process that outlives the page.

    The study's own lock decides: while another process runs it on this store, this one exits at
    once (code 3) and the page shows the one in progress.
    """
    if not allowed():
        return PUBLIC_REFUSAL
    if running_study(name):
        return "This study is already running; its progress is shown below."
    try:
        root = store().write_root
    except CheckpointError as e:
        return f"Cannot run the study: {e}"
    cmd = [sys.executable, "-m", "fmnist_core", "study", "run", name, "--checkpoints", str(root), "--json"]
    cmd += ["--epochs", str(epochs)] * (epochs is not None) + ["--subset", str(subset)] * (subset is not None)
    rc, last_line = _launch(cmd, root / ".studies" / f"{name}.log", wait_s=10.0,   # until it holds the lock
                            started=lambda proc: (running_study(name) or {}).get("pid") == proc.pid)
    if rc == 3:
        return "This study is already running; its progress is shown below."
    if rc not in (None, 0):
        return f"The study did not start: {last_line}"
    return "Study started."


def stop_study(name: str) -> str:
    """Stop the process running the study, its Ray instance and trials with it; finished runs stay."""
    if not allowed():
        return PUBLIC_REFUSAL
    state = running_study(name)
    if not state or not state.get("pgid"):
        return "The study is not running."
    pid, pgid = int(state.get("pid") or 0), int(state["pgid"])
    try:
        if pid == pgid:                 # started here (a session of its own): its Ray processes go too
            os.killpg(pgid, signal.SIGTERM)
        else:                           # started in someone's shell: only the driver
            os.kill(pid, signal.SIGTERM)
    except OSError as e:
        return f"Could not stop process {pid}: {e.strerror}"
    return "Stopping: finished trials stay; partial ones resume from their last epoch when it runs again."
