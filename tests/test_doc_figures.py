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


def test_a_gpu_result_may_name_its_gpu_as_the_machine(tmp_path):
    text = "an epoch takes 0.35 s<!-- from gpu.json median_epoch_s -->\n"
    stamped = {"commit": "0123abc", "date": "2026-12-04T18:39:03+00:00", "median_epoch_s": 0.354}
    assert _doc_figures(tmp_path / "a", text, {"gpu.json": {**stamped, "device": "NVIDIA H200"}}).problems() == []
    nested = {"environment": {**stamped, "device": "cuda", "device_name": "NVIDIA H200"}, "median_epoch_s": 0.354}
    assert _doc_figures(tmp_path / "b", text, {"gpu.json": nested}).problems() == []
    # a bare device type names no machine
    for device in ("cpu", "cuda", "cpu (2 logical cores, 2 torch threads)"):
        (found,) = _doc_figures(tmp_path / device[:4], text, {"gpu.json": {**stamped, "device": device}}).problems()
        assert "does not record cpu_model" in found


def test_tables_written_by_doc_tables_are_left_to_its_own_check(tmp_path):
    table = "<!-- study table r2026-table1 -->\n| run | wall |\n|---|---|\n| a | 177 s |\n<!-- end of table -->\n"
    assert _doc_figures(tmp_path / "a", table, {}).problems() == []
    (found,) = _doc_figures(tmp_path / "b", table + "the study took 177 s\n", {}).problems()
    assert "177 s has no" in found


def test_a_figure_that_is_no_timing_says_so(tmp_path):
    text = "the page polls every 2 s<!-- not measured -->; the first visit took 4 s\n"
    assert _doc_figures(tmp_path, text, {}).problems() == ["docs/performance.md: 4 s has no <!-- from FILE KEY --> marker"]


def test_a_stamp_counts_for_the_figures_inside_its_section_only(tmp_path):
    stamp = {"cpu": "AMD EPYC", "commit": "400b07c", "date": "2026-12-04T18:17:55Z"}
    data = {"grid": {**stamp, "cka": {"total_s": 400.67}}, "other": {"total_s": 12.2}}
    inside = "the grid took 401 s<!-- from repr.json grid.cka.total_s -->\n"
    assert _doc_figures(tmp_path / "a", inside, {"repr.json": data}).problems() == []
    beside = "the other took 12.2 s<!-- from repr.json other.total_s -->\n"
    (found,) = _doc_figures(tmp_path / "b", beside, {"repr.json": data}).problems()
    assert "does not record cpu_model, commit, date" in found


def test_minutes_and_hours_are_timings_too(tmp_path):
    text = "the install takes about 6 minutes; a study 2.2 hours; 10 epochs\n"
    found = [p.split(": ")[1] for p in _doc_figures(tmp_path, text, {}).problems()]
    assert found == ["6 minutes has no <!-- from FILE KEY --> marker", "2.2 hours has no <!-- from FILE KEY --> marker"]
