"""Check that the measured figures the docs quote come from a result file under benchmarks/results/.

    .venv/bin/python scripts/doc_figures.py --check      # exit 1 naming each figure without a source

A figure is sourced by a marker right after it naming its result file and the JSON key that holds it:

    ours takes 17.2 s<!-- from bench-cpu.json models.finetune.ours.epoch_s --> an epoch

The check reads the key and compares it at the figure's printed precision (a figure followed by % is
the value × 100). The file must record where and when it was measured: the machine, `commit` and
`date` (benchmarks/machine.py's `stamp()`, which the benchmark scripts write), in the object that holds
the key or one enclosing it, or under the file's `environment`. The machine is `cpu_model` (or `cpu`),
or for a GPU result the GPU's name (`device_name`, or `device` when it names the GPU rather than just
`cpu`/`cuda`).

On every page (the README and docs/*.md) every timing or speed figure (s, ms, seconds, minutes,
hours, ×, GFLOP/s, images/s, %) must carry a marker, outside code and the tables
scripts/doc_tables.py generates (its --check keeps them equal to the manifests). Figures whose
result file does not record the machine are measured again or removed. A figure with such a unit
that is no measurement of ours (a setting, a target, a scale factor, a figure quoted from another
document) says so with `<!-- not measured -->` right after it.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BARE_DEVICES = {"cpu", "cuda", "mps", "xpu"}
# tables written by scripts/doc_tables.py from the manifests, which its own --check keeps current
GENERATED_START = re.compile(r"<!-- (study table [\w-]+|results over seeds) -->")

MARKER = re.compile(r"(?P<figure>-?\d[\d,]*(?:\.\d+)?)(?P<unit>[^\d<]{0,12}?)<!-- from (?P<file>\S+) (?P<key>\S+) -->")
FIGURE = re.compile(r"(?<![\w.\-/])(?P<figure>\d[\d,]*(?:\.\d+)?)"
                    r"(?P<unit>×(?!\d)| ?ms\b| ?s/epoch| ?s\b|%| GFLOP/s| images/s| (?:seconds?|minutes?|hours?)\b)"
                    r"(?!<!-- (?:from|not measured))")

def _value(data, key: str):
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _missing_stamp(data, key: str) -> list[str]:
    """What of machine, commit and date the result `data` does not record for the figure at `key`."""
    scopes = [data.get("environment")] if isinstance(data, dict) else []
    for part in key.split("."):
        scopes.append(data)
        try:
            data = data[int(part)] if isinstance(data, list) else data[part]
        except (KeyError, IndexError, ValueError, TypeError):
            break
    scopes = [s for s in reversed(scopes) if isinstance(s, dict)]

    def get(name):
        return next((s[name] for s in scopes if s.get(name)), None)

    device = str(get("device") or "")
    gpu_named = device and device.lower() not in BARE_DEVICES and not device.lower().startswith("cpu")
    cpu = get("cpu") if isinstance(get("cpu"), str) else None
    machine = get("cpu_model") or cpu or get("device_name") or gpu_named
    return [k for k, ok in (("cpu_model", machine), ("commit", get("commit")), ("date", get("date"))) if not ok]


def marked_problems(page: Path) -> list[str]:
    """Each marker whose file, stamp or value is wrong, as 'page: figure: why'."""
    out = []
    for m in MARKER.finditer(page.read_text()):
        where = f"{page.relative_to(ROOT)}: {m['figure']}{m['unit']}"
        path = RESULTS / m["file"]
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            out.append(f"{where}: cannot read benchmarks/results/{m['file']} ({e})")
            continue
        missing = _missing_stamp(data, m["key"])
        if missing:
            out.append(f"{where}: {m['file']} does not record {', '.join(missing)}")
        try:
            value = float(_value(data, m["key"]))
        except (KeyError, IndexError, ValueError, TypeError):
            out.append(f"{where}: {m['file']} has no number at {m['key']}")
            continue
        text = m["figure"].replace(",", "")
        places = len(text.partition(".")[2])
        if m["unit"].strip().startswith("%"):
            value *= 100
        if round(value, places) != float(text):
            out.append(f"{where}: {m['file']} {m['key']} is {value:.{places + 2}f}")
    return out


def unmarked(page: Path) -> list[str]:
    """Timing and speed figures of a page with no marker, outside code."""
    rel = str(page.relative_to(ROOT))
    out, fenced, generated = [], False, False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if GENERATED_START.match(line):
            generated = True
        elif line.startswith("<!-- end of table -->"):
            generated = False
        if fenced or generated:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for m in FIGURE.finditer(line):
            out.append(f"{rel}: {m['figure'] + m['unit']} has no <!-- from FILE KEY --> marker")
    return out


def problems() -> list[str]:
    out = [p for page in PAGES for p in marked_problems(page)]
    for page in PAGES:
        out += unmarked(page)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 naming each figure without a source")
    p.parse_args(argv)
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
