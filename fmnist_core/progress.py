"""A small JSON file in a run's folder that its training process keeps up to date, for the app to poll.

It says which epoch and batch are training and since when; whether the run is alive is decided by
the run's lock (`RunStore.is_training`), not by this file, so a crashed run never looks alive.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .store import atomic_write

FILENAME = "progress.json"


class ProgressFile:
    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / FILENAME
        self.state: dict = {}

    def _write(self) -> None:
        self.state["updated"] = time.time()
        try:
            atomic_write(self.path, json.dumps(self.state).encode())
        except OSError:
            pass   # progress is a courtesy; training goes on without it

    def begin(self, run_id: str, epochs: int) -> None:
        self.state = {"pid": os.getpid(), "status": "running", "run": run_id, "epochs": epochs,
                      "started": time.time(), "epoch": 0, "batch": 0, "batches": 0, "epoch_seconds": None}
        self._write()

    def update(self, event: dict) -> None:
        s = self.state
        kind = event["type"]
        if kind == "batch":
            s.update(epoch=event["epoch"] - 1, batch=event["batch"], batches=event["batches"])
            if event["batch"] != event["batches"] and event["batch"] % 50:
                return
        elif kind == "epoch":
            s.update(epoch=event["record"]["epoch"], batch=0, epoch_seconds=event["record"]["seconds"])
        self._write()

    def finish(self, status: str) -> None:
        self.state["status"] = status
        self._write()
