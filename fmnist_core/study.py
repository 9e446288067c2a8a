"""Studies: the reference documents' experiment tables as TOML files, their trials as runs, their tables.

A study file (studies/*.toml, read with tomllib) holds a name, title, source, a base preset, the
metrics the document reports, notes, optionally `seeds = N`, and the trials: each a label, an
optional preset (default: the base), `set` overrides, the `published` value of each metric, an
optional `pretrain` (the label of the autoencoder trial whose encoder a classifier starts from), an
optional `claim` (what the document states without a number), an optional `seeds` (fewer than the
study's, for an exploration trial decided at seed 0) and an optional `against` (the label of the
trial it changes: the table gives the gain over it, and whether that exceeds the noise). A `[grid]`
table of field -> list of values adds one trial per combination. Every trial is a run of the store;
running a study is tune.py's job (the one module that talks to Ray).
"""
from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .presets import preset as get_preset
from .spec import RunSpec, SpecError, read_toml, resolve_alias

STUDIES_DIR = Path(__file__).resolve().parent.parent / "studies"
STUDY_KEYS = {"name", "title", "source", "base", "metrics", "notes", "seeds", "trials", "grid"}
TRIAL_KEYS = {"label", "preset", "set", "published", "pretrain", "claim", "seeds", "against"}


class StudyError(ValueError):
    """A study file is missing or wrong; the message names the file and the key."""


# ---- metrics: one number per run, from its history (and, for a few, its test predictions) ------------
def _final(key):
    return lambda h: h[-1].get(key)


def _best(key, fn):
    return lambda h: fn(r[key] for r in h) if key in h[0] else None


HISTORY_METRICS = {
    "min_train_mse": _best("train_loss_running", min),    # the loss while training, dropout on
    "min_val_mse": _best("val_loss", min),
    "final_val_mse": _final("val_loss"),
    "final_test_mse": _final("test_loss"),
    "test_mse": lambda h: None,                            # the selected epoch's: see run_metrics
    "max_val_acc": _best("val_acc", max),
    "min_val_loss": _best("val_loss", min),
    "final_train_loss_running": _final("train_loss_running"),
    "final_train_loss": _final("train_loss"),
    "final_val_loss": _final("val_loss"),
    "final_test_loss": _final("test_loss"),
    "final_train_acc": _final("train_acc"),
    "final_val_acc": _final("val_acc"),
    "final_test_acc": _final("test_acc"),
    "test_accuracy": lambda h: None,
    # the test accuracy of the best validation epoch (its first, as training keeps it): what selecting
    # on validation gives, read from any run's history without a run of its own
    "best_val_test_acc": lambda h: max(h, key=lambda r: r["val_acc"])["test_acc"] if "val_acc" in h[0] else None,
    "gap_pts": lambda h: (h[-1]["train_acc"] - h[-1]["test_acc"]) * 100 if "train_acc" in h[-1] else None,
}
# Counts over the test set's 1,000 shirts (class 6) of the last weights' predictions.
SHIRT = 6
PREDICTION_METRICS = {"shirt_correct": SHIRT, "shirt_as_tshirt": 0, "shirt_as_pullover": 2}
METRICS = set(HISTORY_METRICS) | set(PREDICTION_METRICS)


@dataclass(frozen=True)
class Trial:
    label: str
    preset: str
    overrides: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)
    pretrain: str | None = None
    claim: str | None = None
    seeds: int | None = None           # None: the study's
    against: str | None = None         # the label of the trial whose figures this one's gain is measured from


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    source: str
    base: str
    metrics: tuple[str, ...]
    trials: tuple[Trial, ...]
    notes: str = ""
    seeds: int = 1
    path: str = ""

    def trial(self, label: str) -> Trial:
        for t in self.trials:
            if t.label == label:
                return t
        raise StudyError(f"{self.path}: no trial labelled {label!r}")

    def specs(self, epochs: int | None = None, subset: int | None = None) -> list[tuple[Trial, int, RunSpec]]:
        """(trial, seed, spec) of every run, an autoencoder before the classifiers that start from it.

        `epochs` and `subset` shrink the study for a quick look: they go into every spec, so those
        runs are other runs than the full study's. Built once per size and kept on the study (a page
        polling a study's progress asks for them every few seconds).
        """
        memo = self.__dict__.setdefault("_specs_by_size", {})      # frozen: no field, not compared
        if (epochs, subset) not in memo:
            memo[(epochs, subset)] = self._build_specs(epochs, subset)
        return list(memo[(epochs, subset)])

    def _build_specs(self, epochs: int | None, subset: int | None) -> list[tuple[Trial, int, RunSpec]]:
        quick = {k: v for k, v in (("epochs", epochs), ("subset", subset)) if v is not None}
        built: dict[tuple[str, int], RunSpec] = {}

        def build(t: Trial, seed: int, stack: tuple[str, ...] = ()) -> RunSpec:
            if (t.label, seed) in built:
                return built[(t.label, seed)]
            if t.label in stack:
                raise StudyError(f"{self.path}: trials {' -> '.join(stack + (t.label,))} start from each other")
            overrides = {**t.overrides, **quick}
            if self.seeds > 1:
                overrides["seed"] = seed
            base = get_preset(t.preset).spec
            if t.pretrain is not None:
                ae = build(self.trial(t.pretrain), seed, stack + (t.label,))
                if ae.kind != "autoencoder":
                    raise StudyError(f"{self.path}: trial {t.label!r} pretrains from {t.pretrain!r}, "
                                     "which is not an autoencoder trial")
                overrides["pretrained_from"] = ae.run_id
            elif base.kind == "classifier" and base.init == "pretrained":
                raise StudyError(f"{self.path}: trial {t.label!r} starts from a pretrained encoder: name the "
                                 "autoencoder trial it starts from with pretrain = \"LABEL\"")
            try:
                spec = base.with_overrides(overrides)
            except SpecError as e:
                raise StudyError(f"{self.path}: trial {t.label!r}: {e}") from None
            built[(t.label, seed)] = spec
            return spec

        out = []
        for seed in range(self.seeds):
            for t in self.trials:
                if seed < (t.seeds or self.seeds):
                    build(t, seed)
        order = sorted(built.items(), key=lambda kv: (kv[1].kind != "autoencoder",))
        labels = {t.label: t for t in self.trials}
        for (label, seed), spec in order:
            out.append((labels[label], seed, spec))
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "source": self.source, "trials": len(self.trials),
                "seeds": self.seeds, "metrics": list(self.metrics), "path": self.path}


def _need(cond: bool, path, message: str) -> None:
    if not cond:
        raise StudyError(f"{path}: {message}")


def load_study(ref: str | Path) -> Study:
    """A study by name (studies/NAME.toml) or path; StudyError naming what is wrong."""
    path = Path(ref)
    if not path.suffix:
        path = STUDIES_DIR / f"{ref}.toml"
        if not path.is_file():
            names = ", ".join(s.name for s in list_studies())
            raise StudyError(f"no study {ref!r}; studies: {names}")
    d = read_toml(path, "study file", StudyError)
    unknown = sorted(set(d) - STUDY_KEYS)
    if unknown:
        raise StudyError(f"{path}: unknown key {unknown[0]!r}; a study has {', '.join(sorted(STUDY_KEYS))}")
    for key in ("name", "title", "source", "base"):
        _need(isinstance(d.get(key), str) and d[key], path, f"{key!r} must be a non-empty string")
    metrics = d.get("metrics", [])
    _need(isinstance(metrics, list) and metrics, path, "'metrics' must be a list of metric names")
    for m in metrics:
        _need(m in METRICS, path, f"unknown metric {m!r}; metrics: {', '.join(sorted(METRICS))}")
    seeds = d.get("seeds", 1)
    _need(isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1, path, "'seeds' must be a whole number >= 1")
    try:
        get_preset(d["base"])
    except SpecError as e:
        raise StudyError(f"{path}: base: {e}") from None
    trials = [_trial(path, i, t, d["base"], metrics) for i, t in enumerate(d.get("trials", []))]
    trials += _grid_trials(path, d.get("grid"), d["base"])
    _need(bool(trials), path, "no trials: add [[trials]] tables or a [grid]")
    labels = [t.label for t in trials]
    for t in trials:
        _need(t.against is None or t.against in labels, path, f"trial {t.label!r}: against {t.against!r} is no trial's label")
        _need(t.seeds is None or t.seeds <= seeds, path, f"trial {t.label!r}: seeds = {t.seeds} is more than the study's {seeds}")
    dup = next((x for x in labels if labels.count(x) > 1), None)
    _need(dup is None, path, f"two trials are labelled {dup!r}")
    study = Study(d["name"], d["title"], d["source"], d["base"], tuple(metrics), tuple(trials),
                  d.get("notes", ""), seeds, str(path))
    study.specs()                            # every trial builds, and its dependencies resolve
    return study


def _trial(path, i: int, t, base: str, metrics) -> Trial:
    where = f"trials[{i}]"
    _need(isinstance(t, dict), path, f"{where} must be a table")
    unknown = sorted(set(t) - TRIAL_KEYS)
    if unknown:
        raise StudyError(f"{path}: {where}: unknown key {unknown[0]!r}; a trial has {', '.join(sorted(TRIAL_KEYS))}")
    _need(isinstance(t.get("label"), str) and t["label"], path, f"{where}: 'label' must be a non-empty string")
    where = f"trial {t['label']!r}"
    name = t.get("preset", base)
    try:
        get_preset(name)
    except SpecError as e:
        raise StudyError(f"{path}: {where}: {e}") from None
    overrides = t.get("set", {})
    _need(isinstance(overrides, dict), path, f"{where}: 'set' must be a table of field = value")
    published = t.get("published", {})
    _need(isinstance(published, dict), path, f"{where}: 'published' must be a table of metric = value")
    for k, v in published.items():
        _need(k in metrics, path, f"{where}: published {k!r} is not one of the study's metrics ({', '.join(metrics)})")
        _need(isinstance(v, (int, float)) and not isinstance(v, bool), path, f"{where}: published {k!r} must be a number")
    seeds = t.get("seeds")
    _need(seeds is None or (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1), path,
          f"{where}: 'seeds' must be a whole number >= 1")
    _need(t.get("against") is None or isinstance(t["against"], str), path, f"{where}: 'against' must be a trial's label")
    return Trial(t["label"], name, {resolve_alias(k): v for k, v in overrides.items()}, dict(published),
                 t.get("pretrain"), t.get("claim"), seeds, t.get("against"))


def _grid_trials(path, grid, base: str) -> list[Trial]:
    if grid is None:
        return []
    _need(isinstance(grid, dict) and grid, path, "[grid] must be a table of field = [values]")
    for k, v in grid.items():
        _need(isinstance(v, list) and v, path, f"grid: {k!r} must be a non-empty list of values")
    keys = list(grid)
    return [Trial(", ".join(f"{k}={v}" for k, v in zip(keys, combo)), base,
                  {resolve_alias(k): v for k, v in zip(keys, combo)})
            for combo in itertools.product(*(grid[k] for k in keys))]


def list_studies() -> list[Study]:
    out = []
    for p in sorted(STUDIES_DIR.glob("*.toml")):
        out.append(load_study(p))
    return out


# ---- tables: ours beside the published ----------------------------------------------------------------
def run_metrics(manifest: dict, wanted, predictions=None, labels=None) -> dict[str, float]:
    """The study metrics of one run; prediction metrics need the test labels and the run's predictions."""
    from .runs import selected_record
    h = manifest["history"]
    chosen = selected_record(manifest) or {}
    out = {}
    for m in wanted:
        if "mse" in m and manifest["kind"] != "autoencoder":     # a classifier's loss is no MSE
            continue
        if m in ("test_accuracy", "test_mse"):
            v = chosen.get("test_acc" if m == "test_accuracy" else "test_loss")
        elif m in HISTORY_METRICS:
            v = HISTORY_METRICS[m](h) if h else None
        elif predictions is not None:
            shirts = labels == SHIRT
            v = int((predictions[shirts] == PREDICTION_METRICS[m]).sum())
        else:
            v = None
        if v is not None:
            out[m] = float(v)
    return out


# "Beyond the noise" is a two-sided Student t-test at 5%: with 3 seeds the t quantile is 4.30, not 2, so
# a difference must be about twice as large as a rule of two standard errors would ask.
SIGNIFICANCE = 0.05


def _t_test(value: float, se: float, df: float) -> tuple[float, float]:
    """(half-width of the 95% interval, two-sided p) of `value` with standard error `se` and `df` degrees."""
    from scipy import stats
    half = float(stats.t.ppf(1 - SIGNIFICANCE / 2, df)) * se
    if se == 0:
        return half, (1.0 if value == 0 else 0.0)
    return half, float(2 * stats.t.sf(abs(value) / se, df))


def difference_test(difference: float, std: float, seeds: int) -> tuple[float, float]:
    """(noise, p) of (our mean over `seeds`, std over them) - (one published run): the published run
    has our runs' spread, so the standard error is std * sqrt(1 + 1/seeds), on seeds - 1 degrees;
    noise is the 95% half-width t(0.975, seeds - 1) * that error."""
    return _t_test(difference, std * math.sqrt(1 + 1 / seeds), seeds - 1)


def gain_test(gain: float, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, float]:
    """(noise, p) of the difference of two means, a and b given as (std, seeds): Welch's t-test, the
    standard error sqrt(std_a^2/seeds_a + std_b^2/seeds_b) on Welch-Satterthwaite degrees of freedom."""
    va, vb = a[0] ** 2 / a[1], b[0] ** 2 / b[1]
    terms = (va ** 2 / (a[1] - 1) if va else 0.0) + (vb ** 2 / (b[1] - 1) if vb else 0.0)
    df = (va + vb) ** 2 / terms if terms else min(a[1], b[1]) - 1
    return _t_test(gain, math.sqrt(va + vb), df)


def difference_tests(difference: dict[str, float], std: dict[str, float], seeds: int) -> dict[str, tuple[float, float]]:
    """Per metric with a spread over seeds: difference_test's (noise, p)."""
    return {k: difference_test(d, std[k], seeds) for k, d in difference.items() if k in std}


def gain_tests(gain: dict[str, float], a: dict, b: dict) -> dict[str, tuple[float, float]]:
    """Per metric with a spread in both table rows (gain = a - b): gain_test's (noise, p)."""
    return {k: gain_test(g, (a["std"][k], a["seeds"]), (b["std"][k], b["seeds"]))
            for k, g in gain.items() if k in a["std"] and k in b["std"]}


def _verdicts(tests: dict[str, tuple[float, float]]) -> tuple[dict, dict, dict]:
    """Per metric (noise, p) -> the table's three dicts: noise, p, and whether p < SIGNIFICANCE."""
    return ({k: v[0] for k, v in tests.items()}, {k: v[1] for k, v in tests.items()},
            {k: v[1] < SIGNIFICANCE for k, v in tests.items()})


def _run_status(manifest: dict | None) -> str:
    return "missing" if manifest is None else ("complete" if manifest["complete"] else "partial")


def status_summary(statuses: list[str]) -> str:
    """A trial's runs (one status per seed) in words: "complete", "missing", "partial", or how many
    seeds are complete ("1 of 3 seeds complete, 1 partial")."""
    if len(set(statuses)) == 1 and (len(statuses) == 1 or statuses[0] != "partial"):
        return statuses[0]
    done = statuses.count("complete")
    others = [f"{statuses.count(s)} {s}" for s in ("training", "partial") if s in statuses]
    return ", ".join([f"{done} of {len(statuses)} seeds complete", *others])


def over_specs(store, specs, wanted, test_images=None, test_labels=None) -> dict:
    """The metrics of one trial's runs (one spec per seed): {"ours" (means), "std" (where 2+ seeds),
    "seeds" (complete runs counted), "run_ids", "status" (per spec: missing, partial, complete)}.

    Only complete runs enter the means: a run still training would pull them towards its early
    epochs. `test_images`/`test_labels` (uint8 (N, 28, 28), (N,)) are needed only for the prediction
    metrics (shirt counts), and only runs with weights give them.
    """
    from .evaluate import cached_predictions
    per_seed, run_ids, status = [], [], []
    for spec in specs:
        rid = store.find(spec)
        m = store.manifest(rid) if rid else None
        run_ids.append(rid or spec.run_id)
        status.append(_run_status(m))
        if m is None or not m["complete"] or not m["history"]:
            continue
        preds = None
        if (m["kind"] == "classifier" and test_images is not None and m["roles"]    # weights shipped
                and any(k in PREDICTION_METRICS for k in wanted)):
            preds = cached_predictions(store, rid, test_images)
        per_seed.append(run_metrics(m, wanted, preds, test_labels))
    ours, std = {}, {}
    for k in {k for d in per_seed for k in d}:
        values = [d[k] for d in per_seed if k in d]
        ours[k] = statistics.fmean(values)
        if len(values) > 1:
            std[k] = statistics.stdev(values)
    return {"ours": ours, "std": std, "seeds": len(per_seed), "run_ids": run_ids, "status": status}


def over_seeds(store, spec: RunSpec, seeds: int = 3, metric: str = "test_accuracy") -> dict:
    """One spec at seeds 0..seeds-1: {"mean", "std" (None under 2 seeds), "seeds" found complete, "run_ids"}."""
    got = over_specs(store, [spec.replace(seed=s) for s in range(seeds)], [metric])
    return {"mean": got["ours"].get(metric), "std": got["std"].get(metric), "seeds": got["seeds"],
            "run_ids": [r for r, st in zip(got["run_ids"], got["status"]) if st == "complete"]}


def table(study: Study, store, test_images=None, test_labels=None, epochs=None, subset=None) -> list[dict]:
    """Per trial: label, overrides from the base, ours (means over complete seeds, with std),
    published, run ids and each seed's status (`runs` sums it up in words); for a trial `against`
    another, its `gain` over that trial. Where the seeds give a spread, each difference and gain has
    its noise (the 95% half-width), p and whether it is beyond the noise (p < 0.05): `difference_noise`,
    `difference_p`, `beyond_noise` (difference_test), `gain_noise`, `gain_p`, `gain_beyond_noise`
    (gain_test). Trials with no complete run give empty `ours`."""
    base = get_preset(study.base).spec
    by_trial: dict[str, list[tuple[int, RunSpec]]] = {}
    for t, seed, spec in study.specs(epochs, subset):
        by_trial.setdefault(t.label, []).append((seed, spec))
    rows = []
    for t in study.trials:
        specs = [spec for _, spec in sorted(by_trial[t.label], key=lambda x: x[0])]
        extra = "test_accuracy" if specs[0].kind == "classifier" else "test_mse"
        got = over_specs(store, specs, list(dict.fromkeys([*study.metrics, extra])), test_images, test_labels)
        ours, std = got["ours"], got["std"]
        overrides = {k: v for k, v in specs[0].differences(base).items()
                     if k not in ("pretrained_from", "init_seed_offset", "seed")}
        diff = {k: ours[k] - v for k, v in t.published.items() if k in ours and not math.isnan(ours[k])}
        noise, p, beyond = _verdicts(difference_tests(diff, std, got["seeds"]))
        rows.append({"label": t.label, "preset": t.preset, "overrides": overrides, "ours": ours, "std": std,
                     "seeds": got["seeds"], "published": dict(t.published), "difference": diff,
                     "difference_noise": noise, "difference_p": p, "beyond_noise": beyond, "claim": t.claim,
                     "run_ids": got["run_ids"], "status": got["status"], "runs": status_summary(got["status"]),
                     "against": t.against,
                     "gain": {}, "gain_noise": {}, "gain_p": {}, "gain_beyond_noise": {}})
    by_label = {r["label"]: r for r in rows}
    for r in rows:                      # what a change buys over the trial it changes
        if r["against"] is not None:
            other = by_label[r["against"]]
            r["gain"] = {k: v - other["ours"][k] for k, v in r["ours"].items() if k in other["ours"]}
            r["gain_noise"], r["gain_p"], r["gain_beyond_noise"] = _verdicts(gain_tests(r["gain"], r, other))
    return rows


# ---- a study running on a store ------------------------------------------------------------------
# One driver per study and store: it holds <write root>/.studies/<name>.lock (an OS file lock, freed
# when its holder dies) and writes <name>.json beside it: its pid, process group, start time and the
# sizes (epochs, subset) the study has been run at, so a quick-size study's runs are found again.
STUDY_STATE_DIR = ".studies"


class StudyBusy(RuntimeError):
    """Another live process is running this study on this store."""


def _state_paths(store, name: str) -> tuple[Path, Path]:
    folder = store.write_root / STUDY_STATE_DIR
    return folder / f"{name}.lock", folder / f"{name}.json"


def _read_state(path: Path) -> dict:
    import json
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def acquire_study(store, name: str, info: dict):
    """Take the study's lock (StudyBusy if a live process holds it) and record `info` (pid, sizes...).

    Returns the lock; release it when the study ends. The sizes run so far are kept.
    """
    import json
    import os

    from filelock import FileLock, Timeout

    from .store import atomic_write
    lock_path, state_path = _state_paths(store, name)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        state = _read_state(state_path)
        raise StudyBusy(f"study {name!r} is already running on {store.write_root} (process {state.get('pid', '?')})")
    state = _read_state(state_path)
    sizes = [list(s) for s in state.get("sizes", [])]
    size = [info.get("epochs"), info.get("subset")]
    if size not in sizes:
        sizes.append(size)
    state = {**info, "pid": os.getpid(), "pgid": os.getpgid(0), "sizes": sizes}
    atomic_write(state_path, json.dumps(state, indent=1).encode())
    return lock


def running_study(store, name: str) -> dict | None:
    """The state of the live process running `name` on this store (pid, pgid, started, epochs,
    subset, sizes), or None when none is."""
    from .runs import is_locked
    lock_path, state_path = _state_paths(store, name)
    if not is_locked(lock_path):
        return None
    return _read_state(state_path) or {"pid": None}


def study_sizes(store, name: str) -> list[tuple[int | None, int | None]]:
    """The (epochs, subset) sizes the study has been run at on this store; (None, None) is the full size."""
    sizes = {(None, None)}
    for root in getattr(store, "roots", [store.root]):
        for e, s in _read_state(Path(root) / STUDY_STATE_DIR / f"{name}.json").get("sizes", []):
            sizes.add((e, s))
    return sorted(sizes, key=lambda x: (x != (None, None), str(x)))


def trial_status(study: Study, store, epochs: int | None = None, subset: int | None = None) -> list[dict]:
    """Per run of the study at this size: label, seed, run id, status (missing, partial, training,
    complete), epochs done of epochs, and the last epoch's validation metric (name, value)."""
    out = []
    training_now = set(store.training_now())
    for t, seed, spec in study.specs(epochs, subset):
        found = store.find(spec)
        rid = found or spec.run_id
        m = store.manifest(rid) if found else None
        training = rid in training_now
        last = m["history"][-1] if m and m["history"] else {}
        key = "val_acc" if spec.kind == "classifier" else "val_loss"
        status = "training" if training else _run_status(m)
        out.append({"label": t.label, "seed": seed, "run_id": rid, "status": status,
                    "epoch": len(m["history"]) if m else 0, "epochs": spec.epochs,
                    "metric": key, "value": last.get(key)})
    return out
