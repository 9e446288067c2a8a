"""Time the UMAP map of the 10,000 test latents for the stored autoencoder, and cache it.

    .venv/bin/python benchmarks/latent_map.py [--checkpoints DIR] [--refit]

Prints the encode and fit times (the fit includes numba's first compilation unless warm) and
writes the map where the app looks for it (checkpoints/cache/umap-last-<sha>.npz).
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import AUTOENCODER, CheckpointStore, load_fashion_mnist
from fmnist_core.latent import LatentMap, encode, map_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--refit", action="store_true", help="fit again even if a cached map exists")
    args = ap.parse_args()
    store = CheckpointStore(args.checkpoints)
    data = load_fashion_mnist()
    ae = store.load_model(AUTOENCODER, "last")
    t0 = time.perf_counter()
    z = encode(ae, data.test_images.numpy())
    t_encode = time.perf_counter() - t0
    path = map_path(store)
    if path.exists() and not args.refit:
        print(json.dumps({"cached": str(path), "fit_seconds_recorded": LatentMap.load(path).seconds}))
        return
    t1 = time.perf_counter()
    lmap = LatentMap.fit(z, data.test_labels.numpy())
    t_fit = time.perf_counter() - t1
    lmap.save(path)
    print(json.dumps({"encode_seconds": round(t_encode, 2), "fit_seconds": round(t_fit, 2),
                      "total_seconds": round(t_encode + t_fit, 2), "points": len(z), "saved": str(path)}))


if __name__ == "__main__":
    main()
