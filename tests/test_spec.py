"""Specs: the id is the spec's, overrides name their field, files and values are checked."""
import pytest

from fmnist_core.spec import RunSpec, SpecError, load_spec_file, parse_assignment, parse_value


def test_the_same_spec_has_the_same_id_and_any_change_another():
    a = RunSpec(kind="classifier", name="x")
    assert a.run_id == RunSpec(kind="classifier", name="x").run_id
    assert a.spec_hash == RunSpec(kind="classifier", name="other").spec_hash      # the name is not hashed
    changed = {a.with_overrides({k: v}).spec_hash for k, v in
               [("lr", 1e-2), ("batch_size", 50), ("epochs", 5), ("seed", 1), ("subset", 600),
                ("encoder.dropout", 0.1), ("head.hidden", [128, 64]), ("optimizer.name", "sgd")]}
    assert len(changed) == 8 and a.spec_hash not in changed


def test_fields_a_kind_does_not_use_do_not_change_its_id():
    ae = RunSpec()
    assert ae.with_overrides({"head.hidden": [7]}).run_id == ae.run_id
    clf = RunSpec(kind="classifier")
    assert clf.with_overrides({"decoder.output": "sigmoid"}).run_id == clf.run_id


def test_round_trip_through_a_dict():
    spec = RunSpec(kind="classifier").with_overrides({"encoder.bottleneck": 256, "optimizer.name": "adamw"})
    again = RunSpec.from_dict(spec.to_dict())
    assert again == spec and again.run_id == spec.run_id


@pytest.mark.parametrize("assignment, message", [
    ("optimizer.lrr=0.1", "unknown field 'optimizer.lrr': optimizer has"),
    ("nonsense=1", "unknown field 'nonsense'"),
    ("batch_size=abc", "batch_size: expected a whole number"),
    ("optimizer.name=rmsprop", "optimizer.name: 'rmsprop' is not one of"),
    ("encoder.dropout=1.5", "encoder.dropout must be in"),
    ("encoder.blocks=[{channels = 16, kernel = 9, padding = 0}, {channels = 8, kernel = 9, padding = 0}, "
     "{channels = 8, kernel = 9, padding = 0}]", "encoder.blocks"),
])
def test_bad_overrides_name_the_field(assignment, message):
    path, value = parse_assignment(assignment)
    with pytest.raises(SpecError, match=message.replace("[", r"\[")):
        RunSpec().with_overrides({path: value})


def test_values_parse_as_toml():
    assert parse_value("0.01") == 0.01 and parse_value("true") is True and parse_value("[128, 64]") == [128, 64]
    assert parse_value("none") is None and parse_value("adam") == "adam"
    with pytest.raises(SpecError, match="FIELD=VALUE"):
        parse_assignment("lr")


def test_a_decoder_that_does_not_give_28x28_is_refused():
    with pytest.raises(SpecError, match="decoder gives"):
        RunSpec().with_overrides({"decoder.layers": [{"channels": 1, "kernel": 3, "stride": 1, "padding": 0,
                                                      "output_padding": 0}]})


def test_spec_files(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('preset = "r2025-arch2"\nepochs = 3\n[optimizer]\nlr = 1e-4\n')
    assert load_spec_file(str(f)) == ("r2025-arch2", {"epochs": 3, "optimizer.lr": 1e-4})
    f.write_text("epochs = [")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec_file(str(f))
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec_file(str(tmp_path / "missing.toml"))
