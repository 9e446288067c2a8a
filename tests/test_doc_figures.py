"""The measured figures the docs quote come from result files that record the machine, commit and date."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = {"cpu_model": "AMD EPYC 9B14", "commit": "0123abc", "date": "2026-12-04T18:00:00+00:00"}


def _doc_figures(tmp_path, page_text: str, results: dict[str, dict]):
    spec = importlib.util.spec_from_file_location("doc_figures", ROOT / "scripts" / "doc_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "docs").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    for name, data in results.items():
        (tmp_path / "benchmarks" / "results" / name).write_text(json.dumps(data))
    page = tmp_path / "docs" / "performance.md"
    page.write_text(page_text)
    module.ROOT, module.RESULTS, module.PAGES = tmp_path, tmp_path / "benchmarks" / "results", [page]
    module.UNSOURCED = {}
    return module


def test_every_quoted_figure_of_the_docs_has_its_source():
    spec = importlib.util.spec_from_file_location("doc_figures", ROOT / "scripts" / "doc_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.problems() == []


def test_a_marked_figure_must_equal_its_source(tmp_path):
    bench = {**STAMP, "models": {"finetune": {"speedup": 2.814, "share": 0.531}}}
    good = ("speedup 2.81×<!-- from bench.json models.finetune.speedup --> at "
            "53%<!-- from bench.json models.finetune.share --> of peak\n")
    assert _doc_figures(tmp_path / "a", good, {"bench.json": bench}).problems() == []
    edited = good.replace("2.81×", "3.50×")
    (found,) = _doc_figures(tmp_path / "b", edited, {"bench.json": bench}).problems()
    assert "3.50" in found and "2.814" in found


def test_a_source_must_record_the_machine_commit_and_date(tmp_path):
    text = "speedup 2.81×<!-- from old.json speedup -->\n"
    (found,) = _doc_figures(tmp_path, text, {"old.json": {"speedup": 2.81, "date": "2026-11-29"}}).problems()
    assert "does not record cpu_model, commit" in found
    assert "cannot read" in _doc_figures(tmp_path / "c", text, {}).problems()[0]


def test_a_timing_without_a_marker_is_found(tmp_path):
    text = "An epoch takes 19.4 s (`--epochs 2` in code is fine); a 28×28 image is no figure.\n"
    assert _doc_figures(tmp_path, text, {}).problems() == ["docs/performance.md: 19.4 s has no <!-- from FILE KEY --> marker"]
