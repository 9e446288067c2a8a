"""docs/results.md's results table, from the checkpoint manifests, beside the published values.

    .venv/bin/python benchmarks/results_table.py [--checkpoints DIR] [--findings] [--seeds]

With --seeds it prints only Table I over seeds: the study `r2026-table1` (every scheme at seeds 0-2),
our mean ± std beside the published single run, and whether the difference is beyond the noise (study.py's
difference_test: a t-test that takes the published figure as one more run, p < 0.05).

With --findings it also prints, per classifier, how the curves behave (where the validation loss
bottoms out, how far it climbs after, the train-test gap at the end) and the most confused class
pairs on the test set (the models are evaluated: a few seconds on the CPU).

Our "val" columns are the held-out 10,000 training images; the reference's validation set is the
official test set, so its accuracy is compared with our test accuracy.
"""
import argparse

import numpy as np
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import RunStore  # noqa: E402
from fmnist_core.presets import SCHEMES, reference_runs  # noqa: E402
from fmnist_core.config import REFERENCE_RESULTS  # noqa: E402


def _manifests(store: RunStore) -> dict[str, dict | None]:
    """{"autoencoder": manifest, "scratch": manifest, ...}: the reference runs in `store` (None if absent)."""
    return {name: store.manifest(run_id) for name, run_id in reference_runs(store).items()}


def table(store: RunStore) -> str:
    manifests = _manifests(store)
    lines = [
        "| model | epochs | train loss (ref.) | val loss | test loss (ref. val.) | train acc (ref.) | val acc "
        "| test acc (ref. val.) | Δ test vs ref. | gap pts (ref.) | best val. epoch: test acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in SCHEMES:
        m = manifests[name]
        ref = REFERENCE_RESULTS[name]
        if m is None:
            lines.append(f"| {name} | 0 | – ({ref['train_loss']}) | – | – ({ref['val_loss']}) | – ({ref['train_acc']}) "
                         f"| – | – ({ref['val_acc']}) | – | – ({ref['gap_pts']}) | – |")
            continue
        h = m["history"][-1]
        b = m["history"][m["best_epoch"] - 1]
        gap = 100 * (h["train_acc"] - h["test_acc"])
        lines.append(
            f"| {name} | {len(m['history'])} | {h['train_loss']:.4f} ({ref['train_loss']}) | {h['val_loss']:.4f} "
            f"| {h['test_loss']:.4f} ({ref['val_loss']}) | {h['train_acc']:.4f} ({ref['train_acc']}) "
            f"| {h['val_acc']:.4f} | {h['test_acc']:.4f} ({ref['val_acc']}) "
            f"| {100 * (h['test_acc'] - ref['val_acc']):+.2f} pts | {gap:.2f} ({ref['gap_pts']}) "
            f"| {m['best_epoch']}: {b['test_acc']:.4f} |")
    ae = manifests["autoencoder"]
    if ae:
        lines.append("")
        lines.append(f"Autoencoder: {len(ae['history'])} epochs, test MSE {ae['history'][-1]['test_loss']:.5f} "
                     f"(on the [-1, 1] scale), best validation epoch {ae['best_epoch']}.")
    devices = {m["provenance"]["device"] for m in manifests.values() if m}
    walls = {n: m["provenance"]["wall_time_s"] for n, m in manifests.items() if m}
    lines.append("")
    lines.append("Trained on: " + "; ".join(sorted(devices)) + ". Wall time (s): "
                 + ", ".join(f"{n} {w:.0f}" for n, w in walls.items()) + ".")
    return "\n".join(lines)


def seeds_table(store: RunStore) -> str:
    """Table I over seeds: per scheme, our mean ± std beside the published figure, and the noise."""
    from fmnist_core.study import load_study, table as study_table
    rows = {r["label"]: r for r in study_table(load_study("r2026-table1"), store)}

    def pm(row, key, fmt="{:.4f}"):
        if key not in row["ours"]:
            return "–"
        std = row["std"].get(key)
        text = fmt.format(row["ours"][key]) + ("" if std is None else " ± " + fmt.format(std))
        return f"**{text}**" if row["beyond_noise"].get(key) else text      # bold: beyond the noise

    lines = ["| model | seeds | test acc: ours | published | difference | its noise (95%) | p | beyond the noise "
             "| train acc: ours (published) | test loss: ours (published val. loss) | gap pts: ours (published) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in SCHEMES:
        row, ref = rows[name], REFERENCE_RESULTS[name]
        n, diff = row["seeds"], row["difference"].get("final_test_acc")
        noise, p = row["difference_noise"].get("final_test_acc"), row["difference_p"].get("final_test_acc")
        beyond = row["beyond_noise"].get("final_test_acc")
        lines.append(
            f"| {name} | {n} | {pm(row, 'final_test_acc')} | {ref['val_acc']:.4f} "
            f"| {'–' if diff is None else f'{100 * diff:+.2f} pts'} | {'–' if noise is None else f'{100 * noise:.2f} pts'} "
            f"| {'–' if p is None else f'{p:.3f}'} "
            f"| {'–' if beyond is None else ('**yes**' if beyond else 'no')} "
            f"| {pm(row, 'final_train_acc')} ({ref['train_acc']:.4f}) | {pm(row, 'final_test_loss')} ({ref['val_loss']:.4f}) "
            f"| {pm(row, 'gap_pts', '{:.2f}')} ({ref['gap_pts']:.2f}) |")
    ae = rows["autoencoder"]
    lines += ["", f"Autoencoder: test MSE {pm(ae, 'test_mse')} over {ae['seeds']} seeds (on the [-1, 1] scale; "
              "the report publishes none). Last epoch of 50 for every run; means over seeds, ± their standard deviation; "
              "in bold, ours where its difference from the published figure is beyond the noise (p < 0.05 in a t-test "
              "on seeds − 1 degrees of freedom, the published figure taken as one more run: its noise is the 95% "
              "half-width t(0.975, seeds − 1) · std · √(1 + 1/seeds))."]
    return "\n".join(lines) + "\n"


def findings(store: RunStore) -> str:
    from fmnist_core import CLASS_NAMES, load_fashion_mnist
    from fmnist_core.evaluate import evaluate_runs, most_confused_pairs

    ids = reference_runs(store)
    manifests = {name: store.manifest(ids[name]) for name in SCHEMES}
    report = evaluate_runs(store, {name: ids[name] for name in SCHEMES if manifests[name]}, load_fashion_mnist())
    lines = ["| model | val loss min (epoch) | val loss at end | rise after min | best val acc (epoch) "
             "| train-test gap at end, pts | most confused on test (true → predicted, share of the row) |",
             "|---|---|---|---|---|---|---|"]
    for name in SCHEMES:
        m = manifests[name]
        if m is None:
            continue
        h = m["history"]
        low = min(h, key=lambda r: r["val_loss"])
        best = max(h, key=lambda r: r["val_acc"])
        end = h[-1]
        pairs = most_confused_pairs(np.asarray(report[name]["confusion"]), 3)
        confused = "; ".join(f"{CLASS_NAMES[t]} → {CLASS_NAMES[p]} {v:.3f}" for t, p, v in pairs)
        lines.append(f"| {name} | {low['val_loss']:.4f} ({low['epoch']}) | {end['val_loss']:.4f} "
                     f"| {end['val_loss'] - low['val_loss']:+.4f} | {best['val_acc']:.4f} ({best['epoch']}) "
                     f"| {100 * (end['train_acc'] - end['test_acc']):.2f} | {confused} |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--findings", action="store_true", help="also the curves' behaviour and the confused pairs")
    ap.add_argument("--seeds", action="store_true", help="only Table I over seeds, with the noise of each difference")
    args = ap.parse_args()
    store = RunStore(args.checkpoints)
    if args.seeds:
        print(seeds_table(store), end="")
        raise SystemExit(0)
    print(table(store))
    if args.findings:
        print()
        print(findings(store))
