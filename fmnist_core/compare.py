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
# Per chosen metric: the kind of run that has it, and whether larger is better.
METRIC_KIND = {"accuracy": ("classifier", max), "loss": ("classifier", min), "mse": ("autoencoder", min)}
# The published values a metric is drawn beside, in order of preference (the studies' metric names).
PUBLISHED_KEYS = {"accuracy": ("max_val_acc", "final_test_acc", "test_accuracy"), "loss": ("min_val_loss",),
                  "mse": ("min_val_mse", "test_mse")}


def study_index(store, studies, sizes: dict[str, list[tuple]] | None = None) -> dict[str, list[dict]]:
    """Run id -> the study trials it belongs to: [{"study", "label", "seed", "published"}].

    `sizes` ({study name: [(epochs, subset), ...]}) adds the quick sizes a study was run at; the full
    size is always included.
    """
    out: dict[str, list[dict]] = {}
    for study in studies:
        for epochs, subset in (sizes or {}).get(study.name, [(None, None)]):
            for trial, seed, spec in study.specs(epochs, subset):
                rid = store.find(spec) or spec.run_id
                out.setdefault(rid, []).append({"study": study.name, "label": trial.label, "seed": seed,
                                                "published": dict(trial.published)})
    return out


def factor_text(field: str, value):
    """A factor's value as the table shows it: scalars as they are, layer lists in short."""
    if isinstance(value, (int, float, str, bool)) or value is None:
        return "derived" if value is None and field == "decoder.layers" else value
    if field == "encoder.blocks":
        text = "-".join(str(b.get("channels")) for b in value)
        odd = [k for k, default in (("kernel", 3), ("padding", 1)) if any(b.get(k) != default for b in value)]
        return text + "".join(f" {k} " + "/".join(str(b.get(k)) for b in value) for k in odd)
    if field == "decoder.layers":
        return f"{len(value)} layers"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return "-".join(map(str, value)) or "none"
    return repr(value)


def spec_factors(spec_dicts: list[dict]) -> list[str]:
    """Dotted spec fields whose values differ between these runs, in spec order."""
    flat = [flat_spec(d) for d in spec_dicts]
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
           "studies": sorted({m["study"] for m in memberships or []}), "memberships": list(memberships or [])}
    if h:
        values = [r[key] for r in h]
        best = best_of(values)
        row.update(final=values[-1], best=best, best_epoch=values.index(best) + 1)
        train_key = "train_acc" if kind == "classifier" else "train_loss"
        # The train-validation gap at the last epoch: accuracy points lost, or MSE gained, on validation.
        row["gap"] = (h[-1][train_key] - h[-1][key]) if kind == "classifier" else (h[-1][key] - h[-1][train_key])
    return _with_trial(row, row["memberships"])


def _with_trial(row: dict, memberships: list[dict]) -> dict:
    """The row named after the first of these study trials that publishes a figure (else the last)."""
    row.update(trial=None, published=None, published_values={})
    for m in memberships:
        row["trial"] = f"{m['study']}: {m['label']}"
        published = m["published"]
        row["published_values"] = dict(published)
        for name in ("max_val_acc", "final_test_acc", "min_val_mse", "min_val_loss"):
            if name in published:
                row["published"] = published[name]
                break
        if row["published"] is not None:
            break
    return row


def damaged_row(run_id: str, error: str) -> dict:
    """The runs table's row of a run whose manifest cannot be read: its id, name and the reason."""
    return {"id": run_id, "name": run_id.rsplit("-", 1)[0], "kind": None, "status": "damaged", "error": error,
            "studies": [], "memberships": [], "spec_flat": {}}


def in_study(rows: list[dict], study: str) -> list[dict]:
    """The rows of `runs_table` that belong to `study`, as copies named after its trial and carrying its
    published figure: a run shared by two studies reads as the trial of the study being looked at."""
    return [_with_trial(dict(r), [m for m in r["memberships"] if m["study"] == study])
            for r in rows if study in r["studies"]]


def runs_table(store, studies=(), run_ids: list[str] | None = None,
               sizes: dict[str, list[tuple]] | None = None) -> tuple[list[dict], list[str]]:
    """(rows, factor columns): every run of the store (or `run_ids`), factors that vary among them.

    Each row keeps its whole flattened spec in `spec_flat`, so that the factors of any subset of the
    rows can be found again (`varying`).
    """
    from .store import CheckpointError
    index = study_index(store, studies, sizes)
    rows, specs = [], []
    for rid in run_ids if run_ids is not None else store.run_ids():
        try:
            m = store.manifest(rid)
            summary = store.summary(rid) if m is not None else None
        except CheckpointError as e:             # listed as damaged, with the reason; not compared
            rows.append(damaged_row(rid, str(e)))
            continue
        if m is None:
            continue
        row = run_row(summary, m, index.get(rid))
        specs.append(m["spec"])
        row["_flat"] = flat_spec(m["spec"])
        rows.append(row)
    factors = spec_factors(specs)
    for row in rows:
        if row["status"] == "damaged":
            continue
        flat = row["spec_flat"] = row.pop("_flat")
        for f in factors:
            row[f] = factor_text(f, flat.get(f))
    return rows, factors


def varying(rows: list[dict]) -> list[str]:
    """The spec fields (dotted) whose values differ among these rows of `runs_table`, in spec order."""
    if not rows:
        return []
    keys = [k for k in rows[0]["spec_flat"] if k not in NOT_FACTORS]
    return [k for k in keys if len({repr(r["spec_flat"].get(k)) for r in rows}) > 1]


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


SEED_FIELDS = ("seed", "pretrained_from", "name")    # what differs between the seeds of one trial


def flat_spec(spec_dict: dict) -> dict:
    """A spec as {dotted field: value}, canonical (derived fields filled in)."""
    return flatten(RunSpec.from_dict(spec_dict).canonical().to_dict())


def seed_groups(rows: list[dict]) -> dict[str, list[str]]:
    """Runs that differ only by seed (and so by the autoencoder they start from): {first id: [ids]}.

    `rows` are {"id", "spec_flat"} (runs_table's rows); a run alone is a group of one.
    """
    groups: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for r in rows:
        key = repr(sorted((k, repr(v)) for k, v in r["spec_flat"].items() if k not in SEED_FIELDS))
        first = keys.setdefault(key, r["id"])
        groups.setdefault(first, []).append(r["id"])
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


def run_metric(manifest: dict, metric: str) -> dict | None:
    """{"final", "best", "best_epoch"} of a run's validation `metric` (accuracy, loss, mse), or None
    when the run is of the other kind or has no epoch yet."""
    kind, best_of = METRIC_KIND[metric]
    if manifest["kind"] != kind or not manifest["history"]:
        return None
    values = [r[CURVE_METRICS[metric][1]] for r in manifest["history"]]
    best = best_of(values)
    return {"final": values[-1], "best": best, "best_epoch": values.index(best) + 1}


def published_value(published: dict, metric: str) -> tuple[str, float] | None:
    """(name, value) of the published figure to draw beside `metric`, or None."""
    for name in PUBLISHED_KEYS[metric]:
        if name in published:
            return name, published[name]
    return None


def group_rows(rows: list[dict], groups: dict[str, list[str]], keys: tuple[str, ...]) -> list[dict]:
    """One row per seed group among `rows`: the first member's fields, `keys` as means with
    `<key>_std` (None for a group of one), `seeds` (how many) and `runs` (their ids)."""
    import statistics
    by_id = {r["id"]: r for r in rows}
    out = []
    for ids in groups.values():
        members = [by_id[i] for i in ids if i in by_id]
        if not members:
            continue
        row = dict(members[0])
        for k in keys:
            values = [m[k] for m in members if m.get(k) is not None]
            row[k] = statistics.fmean(values) if values else None
            row[f"{k}_std"] = statistics.stdev(values) if len(values) > 1 else None
        row["seeds"], row["runs"] = len(members), [m["id"] for m in members]
        out.append(row)
    return out
