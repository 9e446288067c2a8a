"""Fused CPU kernels for the encoder's memory-bound layers, with PyTorch's operators as the fallback.

On a small CPU the encoder's arithmetic-heavy convolutions are not what limits training: its first
block (a one-channel convolution whose 28x28x32 output is written, read back by the max-pool and
pooled with int64 indices) and its dropout layers (a mask drawn, converted, multiplied and kept for
the backward pass) are memory passes at batch 100. `kernels.c` does each in one pass:

* `first_block(x, weight, bias)`: Conv2d(1 -> C, 3, padding 1) -> MaxPool2d(2) -> ReLU, the encoder's
  `net[0:3]`, with the gradients of weight and bias (the input is the image: no gradient);
* `dropout(x, p)`: training-mode dropout, its keep-mask drawn from splitmix64 seeded by torch's CPU
  generator, so `torch.manual_seed` makes it repeatable as before.

Measured (`benchmarks/profile_training.py --kernels`, 2-core Intel Xeon CI machine, alternating
rounds): training 3,681 against 2,958 images/s with PyTorch's operators (1.24x), evaluation 13,531
against 11,288 (1.20x); the first block of 1,000 evaluated images in 6 ms instead of 34.

The C file is compiled once per machine with the system's C compiler (`cc`, or `$CC`), `-O3
-march=native`, into `$XDG_CACHE_HOME/fmnist_core` (or `~/.cache/fmnist_core`, or a temporary folder),
named by a hash of the source, flags and CPU; written atomically. Where there is no compiler, the
build fails, or `FMNIST_KERNELS=0` is set, `available()` is False and the models use PyTorch's
operators: the same functions to float rounding (tests/test_kernels.py compares them); only the
dropout masks differ, drawn from another generator with the same keep probability.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-std=gnu99"]
CHANNEL_BLOCK = 16            # kernels.c's VB: the first block's channel count must be a multiple

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failure: str | None = None
_pool: ThreadPoolExecutor | None = None
_switched_off = False

_i64, _u64, _u32, _f32, _ptr = ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_float, ctypes.c_void_p
_SIGNATURES = {
    "first_block_forward": [_ptr, _i64, _i64, _ptr, _ptr, _i64, _ptr, _ptr, _i64, _i64],
    "first_block_backward": [_ptr, _i64, _i64, _ptr, _ptr, _ptr, _i64, _ptr, _ptr, _i64, _i64],
    "dropout_forward": [_ptr, _u64, _u32, _f32, _ptr, _ptr, _i64, _i64],
    "dropout_backward": [_ptr, _ptr, _f32, _ptr, _i64, _i64],
}


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU model and its feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
        return "\n".join(lines)
    except OSError:
        return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "fmnist_core"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    folder = Path(tempfile.gettempdir()) / f"fmnist_core-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _build() -> ctypes.CDLL:
    from .store import atomic_write, sha256_bytes     # here, not at the top: store imports models, models us

    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler found (install gcc, or set CC)")
    key = sha256_bytes(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_signature().encode()
                       + compiler.encode())[:16]
    target = _cache_dir() / f"kernels-{key}.so"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            built = Path(tmp) / "kernels.so"
            done = subprocess.run([compiler, *FLAGS, "-o", str(built), str(SOURCE)], capture_output=True,
                                  text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"{compiler} failed: {done.stderr.strip()[:500]}")
            atomic_write(target, built.read_bytes())  # another process sees no file or the whole one
    lib = ctypes.CDLL(str(target))
    for name, args in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, None
    return lib


def load() -> ctypes.CDLL | None:
    """The compiled kernels, building them on first use; None where they can't be had (see reason())."""
    global _library, _failure
    with _lock:
        if _library is None and _failure is None:
            if os.environ.get("FMNIST_KERNELS", "1") == "0":
                _failure = "disabled by FMNIST_KERNELS=0"
            else:
                try:
                    _library = _build()
                except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                    _failure = f"fused CPU kernels unavailable, using PyTorch's operators: {e}"
        return _library


def available() -> bool:
    return not _switched_off and load() is not None


@contextlib.contextmanager
def disabled():
    """PyTorch's operators inside the block, for comparisons (bench, tests); not thread-safe."""
    global _switched_off
    before, _switched_off = _switched_off, True
    try:
        yield
    finally:
        _switched_off = before


def reason() -> str | None:
    """Why the kernels are not in use, or None when they are."""
    load()
    return _failure


def _reset_for_tests() -> None:
    global _library, _failure
    with _lock:
        _library, _failure = None, None


def _ranges(total: int, align: int = 1) -> list[tuple[int, int]]:
    """Split [0, total) into one contiguous range per torch thread, boundaries multiples of `align`."""
    parts = max(1, min(torch.get_num_threads(), total // align // 64))   # >= 64 units a thread
    step = -(-total // parts)
    step = -(-step // align) * align
    return [(a, min(a + step, total)) for a in range(0, total, step)]


_pool_lock = threading.Lock()


def _worker_pool() -> ThreadPoolExecutor:
    """The one pool of the process, made on first use (its threads start as work arrives). It holds a
    thread per core but the caller's: ranges beyond that wait their turn, which changes no result."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                       thread_name_prefix="fmnist-kernels")
        return _pool


def _parallel(fn, ranges: list[tuple[int, int]], args: list[tuple]) -> None:
    """fn(*args[k], start, stop) for each range k, in parallel: ctypes releases the GIL during a call."""
    if len(ranges) == 1:
        fn(*args[0], *ranges[0])
        return
    pool = _worker_pool()
    futures = [pool.submit(fn, *a, lo, hi) for a, (lo, hi) in zip(args[1:], ranges[1:])]
    fn(*args[0], *ranges[0])
    for f in futures:
        f.result()


def _p(t: torch.Tensor) -> int:
    return t.data_ptr()


# ----------------------------------------------------------------------------- first block

def first_block_supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.dim() == 4 and x.shape[1] == 1 and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
            and tuple(weight.shape[1:]) == (1, 3, 3) and weight.shape[0] % CHANNEL_BLOCK == 0
            and not x.requires_grad and available())


class _FirstBlock(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, needs_grad):
        lib = load()
        n, _, h, w = x.shape
        c = weight.shape[0]
        x = torch.nn.functional.pad(x.reshape(n, h, w), (1, 1, 1, 1)).contiguous()   # (N, H+2, W+2)
        wt = weight.detach().reshape(c, 9).t().contiguous()  # (9, C): a tap's weights side by side
        b = bias.detach().contiguous()
        out = torch.empty((n, c, h // 2, w // 2), memory_format=torch.channels_last)
        arg = torch.empty((n, h // 2, w // 2, c), dtype=torch.uint8) if needs_grad else None
        ranges = _ranges(n * (h // 2))
        shared = (_p(x), h, w, _p(wt), _p(b), c, _p(out), _p(arg) if arg is not None else None)
        _parallel(lib.first_block_forward, ranges, [shared] * len(ranges))
        if needs_grad:
            ctx.save_for_backward(x, out, arg)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        lib = load()
        x, out, arg = ctx.saved_tensors                       # x: the padded images
        n, c, h, w = out.shape[0], out.shape[1], out.shape[2] * 2, out.shape[3] * 2
        g = grad_out.contiguous(memory_format=torch.channels_last)
        ranges = _ranges(n * (h // 2))
        parts = torch.zeros((len(ranges), 10, c))             # per thread: 9 weight rows + the bias row
        args = [(_p(x), h, w, _p(out), _p(arg), _p(g), c, _p(parts[k]), _p(parts[k, 9]))
                for k in range(len(ranges))]
        _parallel(lib.first_block_backward, ranges, args)
        total = parts.sum(0)
        grad_w = total[:9].t().reshape(c, 1, 3, 3).contiguous() if ctx.needs_input_grad[1] else None
        grad_b = total[9].clone() if ctx.needs_input_grad[2] else None
        return None, grad_w, grad_b, None


def first_block(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(max_pool2d(conv2d(x, weight, bias, padding=1), 2)) for a one-channel x (N, 1, H, W), as a
    channels-last (N, C, H/2, W/2) tensor. Check `first_block_supported` first."""
    needs_grad = torch.is_grad_enabled() and (weight.requires_grad or bias.requires_grad)
    return _FirstBlock.apply(x, weight, bias, needs_grad)


# ----------------------------------------------------------------------------- dropout

def is_dense(t: torch.Tensor) -> bool:
    """Contiguous or channels-last from the start of its storage: a flat array in one of two orders."""
    return t.storage_offset() == 0 and (t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(
        memory_format=torch.channels_last)))


def dropout_supported(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and available()


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        lib = load()
        if not is_dense(x):
            x = x.contiguous()
        # The seed comes from torch's CPU generator: torch.manual_seed makes the masks repeatable.
        seed = int(torch.randint(0, 2 ** 62, (1,)).item())
        drop16 = round(p * 65536)
        scale = 1.0 / (1.0 - p)
        out = torch.empty_like(x)                              # same strides: the flat order is shared
        keep = torch.empty_like(x, dtype=torch.uint8)
        ranges = _ranges(x.numel(), align=4)                  # a random word covers 4 elements
        _parallel(lib.dropout_forward, ranges, [(_p(x), seed, drop16, scale, _p(out), _p(keep))] * len(ranges))
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        lib = load()
        (keep,) = ctx.saved_tensors
        g = grad_out if grad_out.stride() == keep.stride() else torch.empty_like(keep, dtype=grad_out.dtype).copy_(grad_out)
        gin = torch.empty_like(g)
        ranges = _ranges(g.numel())
        _parallel(lib.dropout_backward, ranges, [(_p(g), _p(keep), ctx.scale, _p(gin))] * len(ranges))
        return gin, None


def dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout: each element kept with probability 1 - round(p * 65536) / 65536 and
    scaled by 1 / (1 - p). Check `dropout_supported` first."""
    return _Dropout.apply(x, p)
