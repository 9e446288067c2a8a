"""Load a run trained on another machine (the GPU check's packed run) and evaluate it here, on the CPU.

    mkdir -p /tmp/gpu-run && tar -xzf gpu-correctness-run.tar.gz -C /tmp/gpu-run
    .venv/bin/python benchmarks/check_gpu_run.py /tmp/gpu-run [RUN_ID]

Verifies every file against its sha256 in the manifest, rebuilds the network from the spec on the
CPU, evaluates it on the run's own test set (its spec's split of the local IDX files, which must be
the data it was trained on: the fingerprints are compared) and compares the test accuracy (or MSE)
with the one recorded on the device. Exit 0 where they agree to 0.2 points (0.5% of the MSE), 1 where not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.train import evaluate_split, split_for  # noqa: E402


def check(store_dir: str, run_id: str | None = None, data_dir: str | None = None) -> dict:
    store = RunStore(store_dir)
    ids = [run_id] if run_id else store.run_ids()
    data = load_fashion_mnist(data_dir)
    out = {}
    for rid in ids:
        m = store.require(rid)
        store.verify(rid)
        spec = store.spec(rid, m)
        tensors = split_for(spec, data, "cpu")
        if tensors.fingerprint != m["data_fingerprint"]:
            raise SystemExit(f"{rid}: trained on other data ({m['data_fingerprint']}, here {tensors.fingerprint})")
        model = store.load_model(rid, "last", "cpu")
        r = evaluate_split(model, tensors.test_x, None if spec.kind == "autoencoder" else tensors.test_y)
        last = m["history"][-1]
        if spec.kind == "autoencoder":
            ok = abs(r["loss"] / last["test_loss"] - 1) <= 5e-3
            out[rid] = {"cpu_test_mse": r["loss"], "recorded_test_mse": last["test_loss"], "agree": ok}
        else:
            ok = abs(r["acc"] - last["test_acc"]) <= 2e-3
            out[rid] = {"cpu_test_acc": r["acc"], "recorded_test_acc": last["test_acc"], "agree": ok,
                        "device": (m.get("provenance") or {}).get("device")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", help="the folder the packed run was unpacked into")
    ap.add_argument("run", nargs="?", default=None, help="a run id (default: every run there)")
    ap.add_argument("--data", default=None, help="folder with the Fashion-MNIST IDX files")
    args = ap.parse_args(argv)
    results = check(args.store, args.run, args.data)
    for rid, r in results.items():
        print(rid, r)
    return 0 if results and all(r["agree"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
