"""Comparing runs: one row per run with the factors that vary, best and final metrics, published values;
long-form curves; runs that differ only by seed grouped. Plain dicts and lists: the page makes frames.
"""
from __future__ import annotations

from .spec import RunSpec, flatten

# Per kind: the validation metric compared, and whether larger is better.
VAL_METRIC = {"classifier": ("val_acc", max), "autoencoder": ("val_loss", min)}
# Spec fields never shown as factors: the label, and bookkeeping that follows from others.
NOT_FACTORS = {"name", "init_seed_offset", "pretrained_from"}
CURVE_METRICS = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc"),
                 "mse": ("train_loss", "val_loss")}


def study_index(store, studies) -> dict[str, list[dict]]:
    """Run id -> the study trials it belongs to: [{"study", "label", "seed", "published"}]."""
    out: dict[str, list[dict]] = {}
    for study in studies:
        for trial, seed, spec in study.specs():
            rid = store.find(spec) or spec.run_id
            out.setdefault(rid, []).append({"study": study.name, "label": trial.label, "seed": seed,
                                            "published": dict(trial.published)})
    return out


def spec_factors(spec_dicts: list[dict]) -> list[str]:
    """Dotted spec fields whose values differ between these runs, in spec order."""
    flat = [flatten(RunSpec.from_dict(d).canonical().to_dict()) for d in spec_dicts]
    if not flat:
        return []
    keys = [k for k in flat[0] if k not in NOT_FACTORS]
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def run_row(summary: dict, manifest: dict, memberships: list[dict] | None = None) -> dict:
    """The runs table's row of one run (without its factor columns)."""
    h = manifest["history"]
    kind = manifest["kind"]
    key, best_of = VAL_METRIC[kind]
    row = {"id": summary["id"], "name": summary["name"], "kind": kind, "status": summary["status"],
           "epochs_done": summary["epochs_done"], "epochs": summary["epochs"],
           "wall_time_s": summary.get("wall_time_s"), "read_only": summary["read_only"],
           "metric": key, "final": None, "best": None, "best_epoch": None, "gap": None,
           "studies": sorted({m["study"] for m in memberships or []}), "trial": None, "published": None}
    if h:
        values = [r[key] for r in h]
        best = best_of(values)
        row.update(final=values[-1], best=best, best_epoch=values.index(best) + 1)
        train_key = "train_acc" if kind == "classifier" else "train_loss"
        # The train-validation gap at the last epoch: accuracy points lost, or MSE gained, on validation.
        row["gap"] = (h[-1][train_key] - h[-1][key]) if kind == "classifier" else (h[-1][key] - h[-1][train_key])
    for m in memberships or []:
        row["trial"] = f"{m['study']}: {m['label']}"
        published = m["published"]
        for name in ("max_val_acc", "final_test_acc", "min_val_mse", "min_val_loss"):
            if name in published:
                row["published"] = published[name]
                break
        if row["published"] is not None:
            break
    return row


def runs_table(store, studies=(), run_ids: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """(rows, factor columns): every run of the store (or `run_ids`), factors that vary among them."""
    index = study_index(store, studies)
    rows, specs = [], []
    for rid in run_ids if run_ids is not None else store.run_ids():
        try:
            m = store.manifest(rid)
            summary = store.summary(rid)
        except Exception:                        # a damaged run is listed by `runs`, not compared
            continue
        if m is None:
            continue
        row = run_row(summary, m, index.get(rid))
        specs.append(m["spec"])
        row["_flat"] = flatten(RunSpec.from_dict(m["spec"]).canonical().to_dict())
        rows.append(row)
    factors = spec_factors(specs)
    for row in rows:
        flat = row.pop("_flat")
        for f in factors:
            v = flat.get(f)
            row[f] = v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)
    return rows, factors


def curves(manifests: dict[str, dict], metric: str = "loss") -> list[dict]:
    """Long rows {run, epoch, split ("train"/"validation"), value} of the chosen metric."""
    train_key, val_key = CURVE_METRICS[metric]
    out = []
    for rid, m in manifests.items():
        for r in m["history"]:
            for split, key in (("train", train_key), ("validation", val_key)):
                if key in r:
                    out.append({"run": rid, "epoch": r["epoch"], "split": split, "value": r[key]})
    return out


def seed_groups(spec_dicts: dict[str, dict]) -> dict[str, list[str]]:
    """Runs that differ only by seed: {group label: [run ids]} (a run alone is a group of one)."""
    groups: dict[str, list[str]] = {}
    for rid, d in spec_dicts.items():
        spec = RunSpec.from_dict(d)
        key = spec.replace(seed=0).run_id
        groups.setdefault(key, []).append(rid)
    return groups


def band(curve_rows: list[dict], groups: dict[str, list[str]]) -> list[dict]:
    """Mean, min and max per group, epoch and split: {group, epoch, split, mean, lo, hi, n}."""
    member = {rid: g for g, ids in groups.items() for rid in ids}
    acc: dict[tuple, list[float]] = {}
    for r in curve_rows:
        g = member.get(r["run"])
        if g is not None:
            acc.setdefault((g, r["epoch"], r["split"]), []).append(r["value"])
    return [{"group": g, "epoch": e, "split": s, "mean": sum(v) / len(v), "lo": min(v), "hi": max(v), "n": len(v)}
            for (g, e, s), v in sorted(acc.items())]
