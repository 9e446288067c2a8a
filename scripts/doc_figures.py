"""Check that the measured figures the docs quote come from a result file under benchmarks/results/.

    .venv/bin/python scripts/doc_figures.py --check      # exit 1 naming each figure without a source

A figure is sourced by a marker right after it naming its result file and the JSON key that holds it:

    ours takes 17.2 s<!-- from bench-cpu.json models.finetune.ours.epoch_s --> an epoch

The check reads the key and compares it at the figure's printed precision (a figure followed by % is
the value × 100). The file must record where and when it was measured: `cpu_model`, `commit` and
`date` (benchmarks/machine.py's `stamp()`, which the benchmark scripts write).

On the pages in TIMED_PAGES every timing or speed figure (s, ms, ×, GFLOP/s, images/s, %) must carry
a marker, except those listed in UNSOURCED: figures measured before result files recorded the
machine. Each of those is to be measured again (and marked) or removed; the list only shrinks.
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
TIMED_PAGES = ["docs/performance.md"]
STAMP = ("cpu_model", "commit", "date")

MARKER = re.compile(r"(?P<figure>-?\d[\d,]*(?:\.\d+)?)(?P<unit>[^\d<]{0,12}?)<!-- from (?P<file>\S+) (?P<key>\S+) -->")
FIGURE = re.compile(r"(?<![\w.\-/])(?P<figure>\d[\d,]*(?:\.\d+)?)(?P<unit>×(?!\d)| ?ms\b| ?s/epoch| ?s\b|%| GFLOP/s| images/s)"
                    r"(?!<!-- from)")

# page -> figures quoted without a result file that records the machine (see the module doc).
UNSOURCED: dict[str, list[str]] = {
    "docs/performance.md": [
        # What Ray costs (ray-overhead.json: date only)
        "90.5 s", "62.1 s", "1.46×", "67.3 s", "58.7 s", "20 s", "4 s", "30 s", "1%",
        # Where trials go (ray-placement-*.json: date only)
        "2.70 s", "4.98 s", "1.08×", "1.27×", "2.42 s", "3.81 s",
        # Where the time goes (profile-finetune-cpu-kernels.txt: no machine record)
        "114 ms", "31 GFLOP/s", "6 ms", "42 ms", "4 ms", "3 ms", "2,958 images/s", "1.24×", "1.20×", "6%",
        # App (app-latency*.json: no machine record)
        "35 ms", "2.5 s", "0.9 s", "6.3 s", "26 ms", "1.6 s", "6 s", "21.7 s",
        # Compare page (compare-page*.json: CPU count and date, no CPU model or commit)
        "5.1 s", "5.4 s", "1.81 s", "1.76 s", "2.22 s", "4.4 s", "4.1 s", "3.45 s", "2.53 s", "5.07 s", "3.09 s",
        "1.0 s", "2.0 s", "0.15 s", "6.2 s", "11.2 s",
    ],
}


def _value(data, key: str):
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


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
        missing = [k for k in STAMP if not data.get(k)]
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
    """Timing and speed figures of a TIMED_PAGES page with no marker, outside code and UNSOURCED."""
    rel = str(page.relative_to(ROOT))
    allowed = UNSOURCED.get(rel, [])
    out, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for m in FIGURE.finditer(line):
            fig = m["figure"] + m["unit"]
            if fig not in allowed:
                out.append(f"{rel}: {fig} has no <!-- from FILE KEY --> marker")
    return out


def problems() -> list[str]:
    out = [p for page in PAGES for p in marked_problems(page)]
    for rel in TIMED_PAGES:
        out += unmarked(ROOT / rel)
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
