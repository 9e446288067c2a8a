"""The README is a short door to docs/; the docs' generated tables are the output of their commands."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _doc_tables():
    spec = importlib.util.spec_from_file_location("doc_tables", ROOT / "scripts" / "doc_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short_and_gives_the_two_set_up_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    assert "\n    bash scripts/start.sh\n" in text and "\n    bash scripts/test.sh\n" in text
    shot = ROOT / "docs" / "images" / "latent_space.png"
    assert f"]({shot.relative_to(ROOT)})" in text
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size < 300_000
    for page in ("results", "studies", "performance", "app", "cli", "design", "deploy"):
        assert f"](docs/{page}.md)" in text, page


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    text = page.read_text()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target}"
        if anchor and resolved.suffix == ".md":
            headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                        for h in re.findall(r"^#+ (.*)$", resolved.read_text(), re.M)}
            assert anchor in headings, f"{page.name}: {target}"


def test_the_generated_tables_sit_in_their_docs_pages():
    tables = _doc_tables().tables()
    assert "docs/results.md: results over seeds" in tables
    assert "docs/results.md: study table beyond-recipe" in tables
    for name in ("r2026-table1", "train-size", "tutorial", "r2024", "readme", "r2025-table4", "r2025-table5",
                 "r2025-table6", "r2025-table8", "r2025-table9"):
        assert f"docs/studies.md: study table {name}" in tables
    assert len(tables) == len(set(tables)) and not any(t.startswith("README.md") for t in tables)


def test_the_docs_tables_are_the_output_of_their_commands():
    changed = _doc_tables().refresh(write=False)
    assert changed == [], f"docs tables not current: {changed}; run scripts/doc_tables.py"


def test_a_table_edited_by_hand_is_found(tmp_path, monkeypatch):
    doc_tables = _doc_tables()
    page = tmp_path / "page.md"
    text = (ROOT / "docs" / "studies.md").read_text()
    block = re.search(r"<!-- study table tutorial -->\n.*?<!-- end of table -->", text, re.S)[0]
    page.write_text(block.replace("| exercise 5 | 0.", "| exercise 5 | 1."))
    monkeypatch.setattr(doc_tables, "ROOT", tmp_path)
    monkeypatch.setattr(doc_tables, "PAGES", [page])
    assert doc_tables.refresh(write=False) == ["page.md: study table tutorial"]
    assert doc_tables.refresh(write=True) == ["page.md: study table tutorial"]
    assert page.read_text() == block and doc_tables.refresh(write=False) == []
