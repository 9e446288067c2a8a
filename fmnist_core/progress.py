"""A small JSON file that a training process keeps up to date, for the app to poll.

It says which model and epoch are training and since when; whether the run is alive is decided by
the training lock (see `train.is_training`), not by this file, so a crashed run never looks alive.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .store import atomic_write

FILENAME = "progress.json"


def read_progress(root: str | os.PathLike) -> dict | None:
    try:
        return json.loads((Path(root) / FILENAME).read_text())
    except (OSError, ValueError):
        return None


class ProgressFile:
    def __init__(self, root: str | os.PathLike):
        self.path = Path(root) / FILENAME
        self.state: dict = {}

    def _write(self) -> None:
        self.state["updated"] = time.time()
        try:
            atomic_write(self.path, json.dumps(self.state).encode())
        except OSError:
            pass   # progress is a courtesy; training goes on without it

    def begin(self, models, epochs: int) -> None:
        self.state = {"pid": os.getpid(), "status": "running", "models": list(models), "epochs": epochs,
                      "started": time.time(), "model": None, "epoch": 0, "batch": 0, "batches": 0,
                      "epoch_seconds": {}}
        self._write()

    def update(self, event: dict) -> None:
        s = self.state
        kind = event["type"]
        s["model"] = event["model"]
        if kind == "start":
            s.update(epoch=event["start_epoch"] - 1, batch=0, batches=0)
        elif kind == "batch":
            s.update(epoch=event["epoch"] - 1, batch=event["batch"], batches=event["batches"])
        elif kind == "epoch":
            s.update(epoch=event["record"]["epoch"], batch=0)
            s["epoch_seconds"][event["model"]] = event["record"]["seconds"]
        elif kind in ("done", "skip"):
            s.setdefault("finished_models", []).append(event["model"])
        if kind != "batch" or event["batch"] == event["batches"] or event["batch"] % 100 == 0:
            self._write()

    def finish(self, status: str) -> None:
        self.state["status"] = status
        self._write()
