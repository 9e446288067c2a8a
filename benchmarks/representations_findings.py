"""The figures of docs/representations.md: CKA grids, drift and probes of the shipped runs.

    nice .venv/bin/python benchmarks/representations_findings.py [--out benchmarks/results/representations-findings.json]

Reads them from the shipped cache (checkpoints/cache) where present, else computes them (tens of
minutes on two cores; scripts/representations_cache.py fills the cache the same way).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.representations import commit, cpu_model  # noqa: E402
from fmnist_core import RunStore, load_fashion_mnist  # noqa: E402
from fmnist_core.analysis import represent as R  # noqa: E402
from fmnist_core.presets import reference_runs  # noqa: E402

PAIRS = [("autoencoder", "finetune"), ("autoencoder", "scratch"), ("scratch", "finetune"),
         ("autoencoder", "frozen_pretrained"), ("frozen_random", "untrained"), ("scratch", "untrained"),
         ("scratch", "frozen_random")]
OTHERS = {"r2024-scratch": "r2024-scratch-849125c22e", "r2024-finetune": "r2024-finetune-702498c075",
          "r2025-scratch": "r2025-scratch-61936f9c60", "r2025-frozen_pretrained": "r2025-frozen_pretrained-791b911bdd"}
PROBED = ["autoencoder", "scratch", "finetune", "frozen_random", "frozen_pretrained", "untrained",
          "r2024-finetune", "r2025-scratch"]


def probe_table(rows: list[dict]) -> str:
    """Markdown: one row per layer, one column per run, "linear / kNN" in each cell."""
    names = list(dict.fromkeys(r.get("name", "pixels") for r in rows))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    cell = {(r.get("name", "pixels"), r["layer"]): f"{r['linear_probe_accuracy']:.3f} / {r['knn_accuracy']:.3f}" for r in rows}
    lines = ["| layer | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {layer} | " + " | ".join(cell.get((n, layer), "") for n in names) + " |" for layer in layers]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/representations-findings.json"))
    ap.add_argument("--no-probes", action="store_true")
    args = ap.parse_args()
    store, data = RunStore(), load_fashion_mnist()
    ref = reference_runs(store)
    runs = {k: R.open_run(store, v, data) for k, v in ref.items()}
    runs["untrained"] = R.open_run(store, R.UNTRAINED + ref["scratch"], data)
    runs.update({k: R.open_run(store, v, data) for k, v in OTHERS.items()})
    out = {"cpu": cpu_model(), "commit": commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "runs": {k: r.label for k, r in runs.items()}, "cka": {}, "drift": {}, "probes": []}
    pairs = PAIRS + [("scratch", k) for k in OTHERS] + [("r2024-scratch", "r2025-scratch")]
    for a, b in pairs:
        g = R.similarity(store, runs[a], runs[b], data)
        out["cka"][f"{a} x {b}"] = {k: g[k] for k in ("layers_a", "layers_b", "cka", "cka_std", "images", "estimator")}
    for k in ("finetune", "frozen_pretrained"):
        out["drift"][k] = R.drift(store, runs[k], data)
    if not args.no_probes:
        out["probes"] = R.probes(store, None, data)
        for k in PROBED:
            out["probes"] += [{**row, "name": k} for row in R.probes(store, runs[k], data)]
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(probe_table(out["probes"]))
    print(f"{args.out}: {len(out['cka'])} grids, {len(out['probes'])} probe rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
