"""Which preset a run is, whatever name it is stored under, so a preset's name finds its runs.

A run trained with `--preset NAME` is named after it (`NAME-<hash>`). A run of the same spec trained
another way keeps the name it was trained under: the shipped runs of the better recipe were trained
by the study `beyond-recipe` as `reference-scratch` with the recipe's fields set, so their ids say
`reference-scratch-…`, and shipped runs are never renamed. Their spec says what they are: a run *is*
preset P when its spec is P's spec up to the fields a preset leaves to the run (`FREE`: its seed, its
size, its arithmetic precision, the autoencoder run it starts from, its name). The hash in a run's id covers its whole spec
but the name, so the preset's own run (its spec as is) is found under any name by `RunStore.find`.
"""
from __future__ import annotations

import functools
import json

from .store import CheckpointError
from .presets import PRESETS, specs_for
from .spec import RunSpec, SpecError, _build

FREE = ("name", "seed", "epochs", "subset", "precision", "pretrained_from")


def _key(spec: RunSpec) -> str:
    """The spec without the FREE fields, as text: equal for runs of the same preset."""
    diff = spec.differences(RunSpec())
    return json.dumps({k: v for k, v in diff.items() if k not in FREE}, sort_keys=True)


@functools.cache
def _preset_keys() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for name, p in PRESETS.items():
        keys.setdefault(_key(p.spec), []).append(name)
    return keys


@functools.lru_cache(maxsize=4096)
def _preset_of(spec_json: str, stored_name: str) -> str | None:
    try:       # built without `validate` (it builds the network to check shapes): a stored spec was valid
        spec = _build(RunSpec, json.loads(spec_json), "")
    except (SpecError, ValueError, TypeError):
        return None
    names = _preset_keys().get(_key(spec), [])
    return stored_name if stored_name in names else (names[0] if names else None)


def preset_of(spec: dict | RunSpec) -> str | None:
    """The preset this run's spec is (up to its FREE fields), or None where it is none of them: the
    one it is stored under where several fit."""
    d = spec.to_dict() if isinstance(spec, RunSpec) else spec
    return _preset_of(json.dumps(d, sort_keys=True), str(d.get("name", "")))


def own_spec(name: str) -> RunSpec:
    """Preset `name`'s own run as `train --preset NAME` makes it: a pretrained classifier's spec names
    the autoencoder run it starts from (the preset's own, at the same seed)."""
    return specs_for(name)[-1]


def runs_of_preset(store, name: str) -> list[str]:
    """The ids of the store's runs of preset `name`, its own run (the preset's spec as is) first."""
    if name not in PRESETS:
        return []
    own = store.find(own_spec(name))
    out = [own] if own else []
    for rid in store.run_ids():
        if rid == own:
            continue
        try:
            m = store.manifest(rid)
        except CheckpointError:      # a damaged manifest is reported where the run is opened
            continue
        if m is not None and preset_of(m["spec"]) == name:
            out.append(rid)
    return out

