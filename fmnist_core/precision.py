"""A run's arithmetic: float32 (the default) or bfloat16 autocast, and where bf16 is worth having.

`precision = "bf16"` runs training and evaluation under `torch.autocast(device, dtype=torch.bfloat16)`:
convolutions and linear layers compute in bfloat16 (8 bits of mantissa), while the weights, the
optimizer's moments, the losses and the reductions stay float32. It is allowed

* on CUDA (every GPU PyTorch supports for bf16 autocast), and
* on a CPU with bf16 units: AMX tiles (Intel Xeon since Sapphire Rapids) or AVX-512 BF16 (Intel
  Cooper Lake, AMD Zen 4 and later). Without them PyTorch emulates bf16 with float32 arithmetic
  plus conversions: slower than float32 and less exact, so a run asking for it there is refused
  (PrecisionError, one line naming the CPU) rather than silently trained in float32: an explicit
  choice is honoured or refused, never replaced.

The check lives in one function, `cpu_bf16_units`, that tests replace to simulate either kind of CPU.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

FP32, BF16 = "fp32", "bf16"


class PrecisionError(RuntimeError):
    """bf16 was asked for where this machine has no bf16 arithmetic; the message says what to do."""


def _cpuinfo_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_units() -> tuple[str, ...]:
    """The CPU's bf16 units: a subset of ("amx_bf16", "avx512_bf16"); () where it has none.

    PyTorch's own probes first (what oneDNN will use), /proc/cpuinfo's flags as a second opinion.
    """
    found = []
    probes = (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    flags = _cpuinfo_flags()
    for unit, probe in probes:
        fn = getattr(torch.cpu, probe, None)
        try:
            has = bool(fn()) if fn is not None else False
        except (RuntimeError, OSError):
            has = False
        if has or unit in flags:
            found.append(unit)
    return tuple(found)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def check(precision: str, device: torch.device | str) -> None:
    """PrecisionError where `precision` cannot run on `device`; nothing for float32 or where it can."""
    device = torch.device(device)
    if precision == FP32 or device.type != "cpu":
        return
    if precision != BF16:
        raise PrecisionError(f"precision {precision!r} is not one of fp32, bf16")
    if not cpu_bf16_units():
        raise PrecisionError(
            f"precision bf16 needs a CPU with bf16 units (AMX or AVX-512 BF16); this CPU ({cpu_name()}) has none, "
            "where bf16 would be slower than float32: train with precision fp32 here, or on a GPU")


def autocast(precision: str, device: torch.device | str):
    """The context training and evaluation run in: nothing for float32, bf16 autocast otherwise.

    The autocast cache is off: it would keep a bf16 copy of each weight across a whole epoch's
    context, and CUDA graph capture (fmnist_core/gpu.py) does not allow it.
    """
    if precision == FP32:
        return contextlib.nullcontext()
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
