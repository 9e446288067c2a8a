"""Compute (and so cache, in checkpoints/cache) what the Representations page shows for the shipped
runs: CKA of every pair of the reference set and its controls, probes, drift, and the 2024/2025
networks against the reference. Run once after the reference runs change:

    nice python scripts/representations_cache.py
"""
from __future__ import annotations

import sys
import time

from fmnist_core.analysis import represent as R
from fmnist_core.data import load_fashion_mnist
from fmnist_core.presets import reference_runs
from fmnist_core.runs import RunStore

# The 2024 and 2025 networks with weights: their best classifiers of each scheme.
OTHERS = ["r2024-scratch-849125c22e", "r2024-finetune-702498c075", "r2024-frozen_pretrained-17d5291d00",
          "r2024-frozen_random-00f2a5b06a", "r2025-scratch-61936f9c60", "r2025-frozen_pretrained-791b911bdd"]


def main() -> int:
    store, data = RunStore(), load_fashion_mnist()
    say = lambda m: print(f"{time.strftime('%H:%M:%S')} {m}", file=sys.stderr, flush=True)  # noqa: E731
    ref = reference_runs(store)
    refs = [R.open_run(store, rid, data) for rid in ref.values()]
    controls = [R.open_run(store, R.UNTRAINED + ref["scratch"], data)]
    t0 = time.perf_counter()
    R.similarity_set(store, refs + controls, data, progress=say)
    say(f"reference set: {time.perf_counter() - t0:.0f} s")
    R.similarity_set(store, refs[1:3] + [R.open_run(store, o, data) for o in OTHERS], data, progress=say)
    say(f"2024 and 2025 networks: {time.perf_counter() - t0:.0f} s")
    for name in ("finetune", "frozen_pretrained"):
        R.drift(store, R.open_run(store, ref[name], data), data)
    from fmnist_core.analysis.maps import aligned_maps
    aligned_maps(store, refs, R.split_images(data, "test", 2000)[0], "block3")
    say(f"maps: {time.perf_counter() - t0:.0f} s")
    for run in [None] + refs + controls + [R.open_run(store, o, data) for o in OTHERS[1:5:3]]:
        R.probes(store, run, data, progress=say)
    say(f"all: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
