"""precision = fp32 | bf16: a spec field that leaves every fp32 run as it was, refused where bf16 cannot run."""
import json

import pytest
import torch

from fmnist_core import RunStore, RunSpec
from fmnist_core import precision as precision_module
from fmnist_core.__main__ import main
from fmnist_core.precision import PrecisionError, check
from fmnist_core.runs import DEFAULT_DIR
from fmnist_core.spec import SpecError
from fmnist_core.train import train_run

from conftest import tiny_specs


def test_precision_round_trips_and_only_bf16_changes_the_id():
    spec = RunSpec(kind="classifier")
    assert spec.precision == "fp32"
    bf16 = spec.with_overrides({"precision": "bf16"})
    assert bf16.precision == "bf16" and RunSpec.from_dict(bf16.to_dict()) == bf16
    assert bf16.run_id != spec.run_id and bf16.differences() == {"precision": "bf16"}
    # fp32 is the default: asking for it explicitly is the same run, with the same id
    assert spec.with_overrides({"precision": "fp32"}).run_id == spec.run_id
    # a manifest written before the field existed reads as fp32, with its old id
    old = spec.to_dict()
    del old["precision"]
    assert RunSpec.from_dict(old) == spec
    with pytest.raises(SpecError, match="precision: 'fp16' is not one of fp32, bf16"):
        spec.with_overrides({"precision": "fp16"})


def test_every_shipped_run_keeps_its_id():
    ids = [p.parent.name for p in sorted(DEFAULT_DIR.glob("*/manifest.json"))]
    if not ids:
        pytest.skip("no shipped runs")
    for rid in ids:
        m = json.loads((DEFAULT_DIR / rid / "manifest.json").read_text())
        spec = RunSpec.from_dict(m["spec"])
        assert spec.run_id == rid
        if "precision" not in m["spec"]:           # written before the field: fp32, its id unchanged
            assert spec.precision == "fp32"


def test_fp32_training_never_enters_autocast(tmp_path, fmnist, monkeypatch):
    """The fp32 path is the code path of before the field: no autocast anywhere, so the same numbers."""
    def no_autocast(*a, **k):
        raise AssertionError("autocast entered in an fp32 run")
    monkeypatch.setattr(torch, "autocast", no_autocast)
    m = train_run(tiny_specs(epochs=1)["scratch"], fmnist, RunStore(tmp_path))
    assert m["spec"]["precision"] == "fp32" and m["complete"]


def _simulate(monkeypatch, units):
    monkeypatch.setattr(precision_module, "cpu_bf16_units", lambda: units)


def test_bf16_is_refused_on_a_cpu_without_bf16_units(monkeypatch):
    _simulate(monkeypatch, ())
    with pytest.raises(PrecisionError, match="needs a CPU with bf16 units"):
        check("bf16", "cpu")
    check("fp32", "cpu")                      # float32 always runs
    check("bf16", torch.device("cuda"))       # the GPU is not the CPU's units (checked by CUDA itself)
    _simulate(monkeypatch, ("avx512_bf16",))
    check("bf16", "cpu")


def test_the_cli_refuses_bf16_in_one_line(monkeypatch, tmp_path, capsys):
    _simulate(monkeypatch, ())
    rc = main(["train", "--models", "scratch", "--precision", "bf16", "--epochs", "1", "--subset", "1200",
               "--device", "cpu", "--checkpoints", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: precision bf16 needs a CPU with bf16 units") and "\n" not in err
    assert not list(tmp_path.glob("*/manifest.json"))


def test_train_run_refuses_bf16_too(monkeypatch, tmp_path, fmnist):
    _simulate(monkeypatch, ())
    with pytest.raises(PrecisionError):
        train_run(tiny_specs(epochs=1, precision="bf16")["scratch"], fmnist, RunStore(tmp_path))


def test_bf16_trains_and_evaluates_where_the_cpu_has_the_units(monkeypatch, tmp_path, fmnist):
    # Simulated units: on a CPU without them PyTorch still runs bf16 autocast (emulated, slowly).
    _simulate(monkeypatch, ("avx512_bf16",))
    spec = tiny_specs(epochs=1, precision="bf16")["scratch"]
    m = train_run(spec, fmnist, RunStore(tmp_path))
    fp32 = train_run(tiny_specs(epochs=1)["scratch"], fmnist, RunStore(tmp_path))
    assert m["id"] == spec.run_id != fp32["id"] and m["spec"]["precision"] == "bf16"
    # a short run learns in either precision; bf16 rounds differently, so the numbers differ a little
    assert m["history"][0]["test_acc"] > 0.5
    assert m["history"][0]["test_loss"] != fp32["history"][0]["test_loss"]
    assert m["history"][0]["test_loss"] == pytest.approx(fp32["history"][0]["test_loss"], rel=0.15)
