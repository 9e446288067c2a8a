"""Which classifier reads which input in the app: a drawing from the canvas, or an uploaded picture.

Drawings go to the preset `sketch-robust`, trained on drawn garments (docs/drawings.md). Uploads go
to the classifier that `benchmarks/realworld.py --table` measured best on product photos; its
results file (`PHOTO_RESULTS`) says which. Either choice needs that run, with its weights, in the
store; where it is missing the choice is None and the page says how to get it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .presets import PRESETS, SCHEMES, reference_runs, specs_for

DRAWING_PRESET = "sketch-robust"
PHOTO_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "realworld-table.json"
TRAIN_HINT = "python -m fmnist_core train --preset {preset}"


@dataclass
class Choice:
    """The classifier chosen for one kind of input."""
    preset: str | None                 # the chosen preset, None where no benchmark chose one
    run_id: str | None                 # its run in the store (with weights), None where missing
    label: str = ""                    # how the page names it
    why: str = ""                      # the reason, in words, with the benchmark's figure
    missing: str = ""                  # where run_id is None: what is missing and how to get it
    accuracy: dict = field(default_factory=dict)   # the benchmark's accuracies by kind of input


def _usable(store, run_id: str | None) -> bool:
    """A complete run with weights."""
    if run_id is None:
        return False
    try:
        m = store.manifest(run_id)
    except Exception:                  # a damaged manifest is reported where the run is opened
        return False
    return bool(m and m["complete"] and m["roles"])


def preset_run(store, name: str) -> str | None:
    """The store's run of preset `name` to use, or None: the preset's own spec (seed 0) where it is
    stored with weights, else the latest complete run of that name with weights (one's own, say)."""
    if name.startswith("reference-") and name.split("-", 1)[1] in SCHEMES:
        rid = reference_runs(store)[name.split("-", 1)[1]]
        return rid if _usable(store, rid) else None
    rid = store.find(specs_for(name)[-1])
    if _usable(store, rid):
        return rid
    spec_name = PRESETS[name].spec.name
    found = []
    for rid in store.run_ids():
        try:
            m = store.manifest(rid)
        except Exception:
            continue
        if m and m["name"] == spec_name and m["kind"] == "classifier" and m["complete"] and m["roles"]:
            found.append((m.get("updated", ""), rid))
    return max(found)[1] if found else None


def benchmark_table(path: Path | str = PHOTO_RESULTS) -> dict | None:
    """The results of `benchmarks/realworld.py --table` ({"classifiers": {preset: {kind: {...}}}}),
    or None where the file is missing or unreadable."""
    try:
        table = json.loads(Path(path).read_text())
        return table if isinstance(table.get("classifiers"), dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def _accuracies(table: dict | None, preset: str) -> dict:
    row = (table or {}).get("classifiers", {}).get(preset, {})
    return {kind: r["accuracy"] for kind, r in row.items() if isinstance(r, dict) and "accuracy" in r}


def for_drawings(store, table: dict | None = None) -> Choice:
    acc = _accuracies(table, DRAWING_PRESET)
    rid = preset_run(store, DRAWING_PRESET)
    why = "trained on drawn garments (silhouettes and outlines, docs/drawings.md)"
    if "drawings" in acc:
        why += f"; {acc['drawings']:.0%} of the benchmark's drawings"
    missing = "" if rid else (f"`{DRAWING_PRESET}` is not in this store: train it with "
                              f"`{TRAIN_HINT.format(preset=DRAWING_PRESET)}` (about a minute on a GPU).")
    return Choice(DRAWING_PRESET, rid, DRAWING_PRESET, why, missing, acc)


def for_uploads(store, table: dict | None = None) -> Choice:
    """The classifier the benchmark shows best on product photos, among those it measured."""
    scores = {p: _accuracies(table, p).get("photo") for p in ((table or {}).get("classifiers") or {})}
    scores = {p: a for p, a in scores.items() if isinstance(a, (int, float)) and p in PRESETS}
    if not scores:
        return Choice(None, None, missing="No benchmark of product photos is here "
                                          "(`benchmarks/realworld.py --table` writes it).")
    best = max(scores, key=lambda p: (scores[p], p == DRAWING_PRESET))
    rid = preset_run(store, best)
    why = f"the best on the benchmark's product photos ({scores[best]:.1%})"
    missing = "" if rid else (f"`{best}`, the best on the benchmark's product photos, is not in this store: "
                              f"train it with `{TRAIN_HINT.format(preset=best)}`.")
    return Choice(best, rid, best, why, missing, _accuracies(table, best))
