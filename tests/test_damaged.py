"""A run whose manifest cannot be read shows as damaged wherever runs are listed; it never vanishes."""
import json
import shutil

import pytest

from fmnist_core import RunStore
from fmnist_core.__main__ import main
from fmnist_core.compare import runs_table
from fmnist_core.presets import reference_runs


@pytest.fixture
def damaged_store(trained_store, tiny_ids, tmp_path):
    """The tiny store with the scratch run's manifest cut short."""
    shutil.copytree(trained_store.root, tmp_path / "ck")
    manifest = tmp_path / "ck" / tiny_ids["scratch"] / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    return RunStore(tmp_path / "ck")


def test_the_runs_command_lists_a_damaged_run_with_the_reason(damaged_store, tiny_ids, capsys):
    assert main(["runs", "--checkpoints", str(damaged_store.root), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == sorted(tiny_ids.values())
    bad = rows[tiny_ids["scratch"]]
    assert bad["status"] == "damaged" and "not valid JSON" in bad["error"]
    assert main(["runs", "--checkpoints", str(damaged_store.root)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(tiny_ids["scratch"]))
    assert "error:" in line and "not valid JSON" in line


def test_compare_lists_a_damaged_run_as_damaged(damaged_store, tiny_ids):
    rows, factors = runs_table(damaged_store)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == sorted(tiny_ids.values())
    bad = by_id[tiny_ids["scratch"]]
    assert bad["status"] == "damaged" and "not valid JSON" in bad["error"] and bad["kind"] is None
    assert {r["status"] for r in rows if r is not bad} == {"complete"} and "kind" in factors


def test_a_bug_is_not_taken_for_damage(damaged_store, monkeypatch):
    """Only a run that cannot be read is listed as damaged: an error of the code still shows."""
    def broken(self, run_id):
        raise KeyError("a bug in summary()")
    monkeypatch.setattr(RunStore, "summary", broken)
    with pytest.raises(KeyError, match="a bug in summary"):
        runs_table(damaged_store)


def test_the_default_run_is_the_damaged_one_where_its_name_has_no_other(damaged_store, tiny_ids, tmp_path):
    # The reference spec's own run is the default, damaged or not (the page opening it says so).
    assert reference_runs(damaged_store)["scratch"] == tiny_ids["scratch"]
    # A damaged run of another spec is found by its name when no other run has it.
    other = tiny_ids["scratch"].rsplit("-", 1)[0] + "-0123456789"
    shutil.move(damaged_store.root / tiny_ids["scratch"], damaged_store.root / other)
    assert reference_runs(RunStore(damaged_store.root))["scratch"] == other
