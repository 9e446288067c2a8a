"""`python -m fmnist_core` with a fault at a chosen moment, for tests/test_faults.py (no clock involved).

    python tests/fault_trainer.py kill-mid-manifest N  ARGS...   SIGKILL itself halfway through writing
                                                                 the Nth manifest (its epoch's weights written)
    python tests/fault_trainer.py term-after-manifest N ARGS...  SIGTERM itself at the first write after the
                                                                 Nth manifest (the next epoch's weights)
"""
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fmnist_core.runs as runs  # noqa: E402
from fmnist_core.__main__ import main  # noqa: E402

mode, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
real = runs.atomic_write
manifests = 0


def faulty_write(path: Path, data: bytes) -> None:
    global manifests
    if mode == "term-after-manifest" and manifests == n:
        os.kill(os.getpid(), signal.SIGTERM)        # what the app's Stop button sends
    if path.name == runs.MANIFEST:
        manifests += 1
        if mode == "kill-mid-manifest" and manifests == n:
            def cut(fd: int) -> None:               # the real atomic_write, its file half on disk
                os.ftruncate(fd, len(data) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            os.fsync = cut
    real(path, data)


runs.atomic_write = faulty_write
sys.exit(main(args))
