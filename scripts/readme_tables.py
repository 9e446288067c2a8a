"""Fill the README's study tables from the shipped runs, or check that they are current.

    .venv/bin/python scripts/readme_tables.py            # rewrite every table in place
    .venv/bin/python scripts/readme_tables.py --check    # exit 1 naming the tables that differ

Each table sits between `<!-- study table NAME -->` and `<!-- end of table -->` and is exactly the
output of `python -m fmnist_core study table NAME --markdown` on the shipped checkpoints/. The block
`<!-- results over seeds -->` ... `<!-- end of table -->` is `benchmarks/results_table.py --seeds`.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- (?P<name>study table [\w-]+|results over seeds) -->\n)(?P<body>.*?)(<!-- end of table -->)", re.S)


def study_markdown(name: str) -> str:
    from fmnist_core.__main__ import main
    from fmnist_core.runs import DEFAULT_DIR
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["study", "table", name, "--markdown", "--checkpoints", str(DEFAULT_DIR)])
    if rc:
        raise SystemExit(f"`study table {name} --markdown` failed (exit {rc})")
    return out.getvalue()


def seeds_markdown() -> str:
    import importlib.util

    from fmnist_core import RunStore
    from fmnist_core.runs import DEFAULT_DIR
    spec = importlib.util.spec_from_file_location("results_table", ROOT / "benchmarks" / "results_table.py")
    results_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results_table)
    return results_table.seeds_table(RunStore(DEFAULT_DIR))


def filled(text: str) -> tuple[str, list[str]]:
    """The README with every table refreshed, and the names of the tables that changed."""
    changed = []

    def fill(match: re.Match) -> str:
        name = match["name"]
        body = seeds_markdown() if name == "results over seeds" else study_markdown(name.removeprefix("study table "))
        if body != match["body"]:
            changed.append(match["name"])
        return match[1] + body + match[4]
    return BLOCK.sub(fill, text), changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is not current")
    args = ap.parse_args()
    text = README.read_text()
    new, changed = filled(text)
    if args.check:
        if changed:
            print(f"not current: {', '.join(changed)} (run scripts/readme_tables.py)")
        return 1 if changed else 0
    if changed:
        README.write_text(new)
    print(f"updated: {', '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
