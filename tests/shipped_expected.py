"""What the shipped store (checkpoints/) holds, written out: tests compare the store with this, never
with whatever happens to be there. Shipping a run means adding it here."""
import statistics

# The reference protocol's runs, by their exact ids: a drifted reference spec gets another id and fails.
REFERENCE_IDS = {
    "autoencoder": "reference-autoencoder-44136fa355",
    "scratch": "reference-scratch-926a125a8f",
    "finetune": "reference-finetune-e62d399614",
    "frozen_random": "reference-frozen_random-23175f414c",
    "frozen_pretrained": "reference-frozen_pretrained-d52bd8651d",
}

# Studies shipped at full size, every trial at every seed complete.
FULL_STUDIES = ["r2026-table1", "tutorial", "r2024", "readme", "r2025-table4", "r2025-table5", "r2025-table6",
                "r2025-table8", "r2025-table9", "beyond-recipe", "train-size", "precision-bf16"]

# Trials whose seed-0 run ships as its history only (weights left out to keep checkpoints/ small); every
# other trial's seed 0 ships with its weights, and seeds 1 and 2 ship as history.
SEED0_HISTORY_ONLY = {
    "beyond-recipe": [f"{scheme}: {change}" for scheme in ("scratch", "finetune") for change in (
        "shift ±2 px", "horizontal flip", "label smoothing 0.1", "AdamW, weight decay 0.05",
        "cosine lr, 2 warm-up epochs")] + ["scratch: all together, 100 epochs", "finetune: all together"],
    "train-size": ["scratch, 59,000 training images"],
    "precision-bf16": ["scratch, bf16"],
}

# Shipped runs that belong to no full-size study (ids), e.g. a preset's own run: add them here.
OTHER_SHIPPED: list[str] = [
    "sketch-robust-d8f025ed06", "sketch-robust-fa00ed53a7", "sketch-robust-2e1bc3df0c",   # seeds 0-2 (0 with weights)
    "sketch-robust-11e106f9c8", "sketch-robust-9a6176c320", "sketch-robust-b7cc33d52e",   # the earlier preset, history
]


def seed_values(store, study_name: str, label: str, key: str = "final_test_acc") -> list[float]:
    """A trial's figure at each of its seeds, read straight from the runs' manifests (no study code
    beyond building the specs): `final_test_acc` is the last epoch's, `test_accuracy` the epoch its
    recipe selects (the best validation epoch where `recipe.select = "best"`)."""
    from fmnist_core.study import load_study
    out = []
    for trial, _, spec in load_study(study_name).specs():
        if trial.label != label:
            continue
        m = store.manifest(spec.run_id)
        assert m is not None and m["complete"], f"{study_name}: {label}: no complete run {spec.run_id}"
        h = m["history"]
        best = (m["spec"].get("recipe") or {}).get("select") == "best"
        first_best = max(h, key=lambda r: r["val_acc"])          # the first epoch of the best validation
        out.append((first_best if key == "test_accuracy" and best else h[-1])["test_acc"])
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values)


def shipped_ids() -> list[str]:
    """Every run the shipped store holds: the full studies' runs and the others listed."""
    from fmnist_core.study import load_study
    ids = {spec.run_id for name in FULL_STUDIES for _, _, spec in load_study(name).specs()}
    return sorted(ids | set(OTHER_SHIPPED))
