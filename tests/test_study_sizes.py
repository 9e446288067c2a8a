"""`study table NAME` finds the runs of a quick `study run NAME --epochs E --subset N` without the flags,
and says which flags show the sizes that hold runs."""
import json
import shutil

import pytest

from fmnist_core import RunStore
from fmnist_core.__main__ import main
from fmnist_core.study import acquire_study


@pytest.fixture
def quick_store(trained_store, tiny_ids, tmp_path):
    """A copy of the tiny store: the 2026 Table I study's seed-0 runs at 2 epochs on 1,200 images."""
    root = tmp_path / "ck"
    shutil.copytree(trained_store.root, root, ignore=shutil.ignore_patterns(".studies"))
    return RunStore(root)


def table(store, *flags, capsys) -> tuple[list[dict], str]:
    assert main(["study", "table", "r2026-table1", "--json", "--checkpoints", str(store.root), *flags]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_the_table_finds_a_quick_studys_runs_without_its_flags(quick_store, tiny_ids, capsys):
    rows, note = table(quick_store, capsys=capsys)
    assert {r["runs"] for r in rows} == {"missing"} and note == ""       # no study run recorded: nothing to say
    acquire_study(quick_store, "r2026-table1", {"epochs": 2, "subset": 1200, "started": 0}).release()
    rows, note = table(quick_store, capsys=capsys)                          # what `study run ... --epochs 2 --subset 1200` leaves
    by_label = {r["label"]: r for r in rows}
    assert by_label["finetune"]["run_ids"][0] == tiny_ids["finetune"]
    assert by_label["finetune"]["runs"] == "1 of 3 seeds complete" and by_label["finetune"]["seeds"] == 1
    expected = quick_store.manifest(tiny_ids["finetune"])["history"][-1]["test_acc"]
    assert by_label["finetune"]["ours"]["test_accuracy"] == pytest.approx(expected)
    assert "`--epochs 2 --subset 1200` (5 of 15 runs complete)" in note and "quick size" in note
    assert main(["study", "table", "r2026-table1", "--checkpoints", str(quick_store.root)]) == 0
    text = capsys.readouterr().out                                           # the text form says it in its header
    assert "quick size `--epochs 2 --subset 1200`" in text and "[1 of 3 seeds complete]" in text


def test_an_explicit_size_is_shown_and_the_sizes_with_runs_named(quick_store, tiny_ids, capsys):
    acquire_study(quick_store, "r2026-table1", {"epochs": 2, "subset": 1200, "started": 0}).release()
    rows, note = table(quick_store, "--epochs", "3", capsys=capsys)
    assert {r["runs"] for r in rows} == {"missing"}
    assert "No run of this study at `--epochs 3`" in note and "`--epochs 2 --subset 1200`" in note
    rows, note = table(quick_store, "--epochs", "2", "--subset", "1200", capsys=capsys)
    assert sum(r["seeds"] for r in rows) == 5 and note == ""
