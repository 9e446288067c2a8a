"""What a result file records about where and when it was measured: CPU model, load, commit, date."""
from __future__ import annotations

import datetime
import os
import subprocess
from pathlib import Path

from fmnist_core.precision import cpu_name

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's model name, as fmnist_core.precision reads it for the bf16 check."""
    return cpu_name()


def cpu_isa() -> str:
    """The CPU's widest vector instructions and its bf16 units, from /proc/cpuinfo: the model name
    alone ("AMD EPYC") does not tell a machine with AVX-512 and bf16 from one with AVX2 only."""
    from fmnist_core.precision import _cpuinfo_flags, cpu_bf16_units
    flags = _cpuinfo_flags()
    widest = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sse4_2", "SSE4.2"))
                   if flag in flags), "unknown")
    units = cpu_bf16_units()
    return widest + (", bf16 units: " + " ".join(units) if units else ", no bf16 units")


def commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (head.stdout.strip() + ("+dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def stamp() -> dict:
    """{"cpu_model", "cpu_isa", "cpu_count", "load_average", "commit", "date"} for a result file."""
    return {"cpu_model": cpu_model(), "cpu_isa": cpu_isa(), "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "commit": commit(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
