"""Fill the docs' generated tables from the shipped runs, or check that they are current.

    .venv/bin/python scripts/doc_tables.py            # rewrite every table in place
    .venv/bin/python scripts/doc_tables.py --check    # exit 1 naming the tables that differ

The tables live in docs/*.md (and README.md, where one is put there).

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
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
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
    """The page with every table refreshed, and the names of the tables that changed."""
    changed = []

    def fill(match: re.Match) -> str:
        name = match["name"]
        body = seeds_markdown() if name == "results over seeds" else study_markdown(name.removeprefix("study table "))
        if body != match["body"]:
            changed.append(match["name"])
        return match[1] + body + match[4]
    return BLOCK.sub(fill, text), changed


def refresh(write: bool) -> list[str]:
    """'page: table' for every generated table that was not current (rewritten where `write`)."""
    changed = []
    for page in PAGES:
        new, page_changed = filled(page.read_text())
        changed += [f"{page.relative_to(ROOT)}: {name}" for name in page_changed]
        if page_changed and write:
            page.write_text(new)
    return changed


def tables() -> list[str]:
    """'page: table' for every generated table in the pages."""
    return [f"{page.relative_to(ROOT)}: {m['name']}" for page in PAGES for m in BLOCK.finditer(page.read_text())]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is not current")
    args = ap.parse_args()
    changed = refresh(write=not args.check)
    if args.check:
        if changed:
            print(f"not current: {'; '.join(changed)} (run scripts/doc_tables.py)")
        return 1 if changed else 0
    print(f"updated: {'; '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
