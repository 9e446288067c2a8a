"""Which size of a study `study table` shows, so that the runs of a quick `study run NAME --epochs E
--subset N` are found without giving the flags again.

Every `study run` records its size (epochs, subset) beside the study's lock (`study.acquire_study`);
(None, None) is the full size. Without flags the table shows the full size where the store holds any
of its runs, else the quick size with the most complete runs, and says so; with flags it shows that
size, and where it has no run names the flags of the sizes that have some.
"""
from __future__ import annotations

from .study import Study, study_sizes, trial_status


def flags(epochs: int | None, subset: int | None) -> str:
    """The command-line flags of a size: '--epochs 4 --subset 4000', or '' for the full size."""
    return " ".join([f"--epochs {epochs}"] * (epochs is not None) + [f"--subset {subset}"] * (subset is not None))


def runs_at(study: Study, store, epochs: int | None, subset: int | None) -> dict:
    """How many of the study's runs at this size the store holds: {epochs, subset, runs, found, complete}."""
    statuses = [t["status"] for t in trial_status(study, store, epochs, subset)]
    return {"epochs": epochs, "subset": subset, "runs": len(statuses),
            "found": sum(s != "missing" for s in statuses), "complete": statuses.count("complete")}


def describe(size: dict) -> str:
    """'`--epochs 4 --subset 4000` (15 of 15 runs complete)', or the full size in words."""
    shown = flags(size["epochs"], size["subset"])
    return (f"`{shown}`" if shown else "the full size (no --epochs, --subset)") + \
        f" ({size['complete']} of {size['runs']} runs complete)"


def size_to_show(study: Study, store, epochs: int | None = None,
                 subset: int | None = None) -> tuple[int | None, int | None, list[str]]:
    """(epochs, subset, notes): the size `study table` shows, and the lines that tell the user why
    and which flags show the other sizes holding runs. An explicit size is always the one shown."""
    shown = runs_at(study, store, epochs, subset)
    others = [s for s in (runs_at(study, store, e, n) for e, n in study_sizes(store, study.name)
                          if (e, n) != (epochs, subset)) if s["found"]]
    if not others:
        return epochs, subset, []
    if shown["found"]:
        return epochs, subset, ["Also in this store: " + "; ".join(map(describe, others)) + "."]
    if epochs is None and subset is None:
        best = max(others, key=lambda s: (s["complete"], s["found"]))   # the first recorded among equals
        rest = [s for s in others if s is not best]
        return best["epochs"], best["subset"], [
            f"No run of this study at its full size in this store: this is its quick size {describe(best)}; "
            "give --epochs and --subset to choose a size."
            + (" Also in this store: " + "; ".join(map(describe, rest)) + "." if rest else "")]
    return epochs, subset, [f"No run of this study at `{flags(epochs, subset)}` in this store; it has runs at "
                            + "; ".join(map(describe, others)) + "."]
