"""Time the UMAP map of the 10,000 test latents for the stored autoencoder, and cache it.

    .venv/bin/python benchmarks/latent_map.py [--checkpoints DIR] [--refit]

Prints the encode and fit times (the fit includes numba's first compilation unless warm) and
writes the map where the app looks for it (checkpoints/cache/umap-last-<sha>.npz).
"""
import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.presets import reference_runs  # noqa: E402
from fmnist_core.latent import LatentMap, encode, map_path  # noqa: E402
from fmnist_core.store import atomic_write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--refit", action="store_true", help="fit again even if a cached map exists")
    args = ap.parse_args()
    store = RunStore(args.checkpoints)
    ae_id = reference_runs(store)["autoencoder"]
    data = load_fashion_mnist()
    ae = store.load_model(ae_id, "last")
    t0 = time.perf_counter()
    z = encode(ae, data.test_images.numpy())
    t_encode = time.perf_counter() - t0
    path = map_path(store, ae_id, "last")
    if path.exists() and not args.refit:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        if LatentMap.arrays_are_valid(arrays):
            print(json.dumps({"cached": str(path), "fit_seconds_recorded": LatentMap.from_arrays(arrays).seconds}))
            return
    t1 = time.perf_counter()
    lmap = LatentMap.fit(z, data.test_labels.numpy())
    t_fit = time.perf_counter() - t1
    buf = io.BytesIO()
    np.savez_compressed(buf, **lmap.to_arrays())      # the npz latent.latent_map reads (no pickles)
    atomic_write(path, buf.getvalue())
    print(json.dumps({"encode_seconds": round(t_encode, 2), "fit_seconds": round(t_fit, 2),
                      "total_seconds": round(t_encode + t_fit, 2), "points": len(z), "saved": str(path)}))


if __name__ == "__main__":
    main()
