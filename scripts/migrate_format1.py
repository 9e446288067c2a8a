"""One-off: move the five shipped runs of format 1 (checkpoints/<model>/) into format 2 (checkpoints/<run id>/)."""
import json
import subprocess
import sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fmnist_core.presets import reference_specs  # noqa: E402
from fmnist_core.runs import FORMAT_VERSION  # noqa: E402

root = ROOT / "checkpoints"
specs = reference_specs()
ae_old = json.loads((root / "autoencoder" / "manifest.json").read_text())
ae_id = specs["autoencoder"].run_id
for name, spec in specs.items():
    old = json.loads((root / name / "manifest.json").read_text())
    mc, tc = old["model_config"], old["train_config"]
    assert mc == {"channels": [32, 64, 64], "dropout": 0.2, "hidden": 128, "num_classes": 10}, mc
    assert (tc["epochs"], tc["batch_size"], tc["lr"], tc["val_size"], tc["subset"], tc["seed"]) == \
        (50, 100, 1e-3, 10000, None, 0), tc
    assert old["kind"] == spec.kind and old["complete"]
    prov = dict(old["provenance"])
    src = prov.get("encoder_source")
    if src is not None:
        assert src == ae_old["files"][ae_old["roles"]["last"]], name
        prov["encoder_source"] = {"run": ae_id, "file": ae_old["roles"]["last"]}
        assert spec.pretrained_from == ae_id
    prov["started_from"] = None
    prov["migrated"] = f"from checkpoints/{name}/ (format 1): same weights files, history and results"
    new = root / spec.run_id
    new.mkdir()
    for f in old["files"]:
        subprocess.run(["git", "mv", str(root / name / f), str(new / f)], check=True, cwd=ROOT)
    manifest = {"format_version": FORMAT_VERSION, "id": spec.run_id, "name": spec.name, "kind": spec.kind,
                "spec": spec.to_dict(), "history": old["history"], "best_epoch": old["best_epoch"],
                "complete": True, "data_fingerprint": old["data_fingerprint"], "optimizer": None,
                "roles": old["roles"], "files": old["files"], "provenance": prov, "updated": old["updated"]}
    (new / "manifest.json").write_text(json.dumps(manifest, indent=1))
    subprocess.run(["git", "rm", "-q", str(root / name / "manifest.json")], check=True, cwd=ROOT)
    subprocess.run(["git", "add", str(new / "manifest.json")], check=True, cwd=ROOT)
    print(name, "->", spec.run_id)
