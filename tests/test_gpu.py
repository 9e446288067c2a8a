"""The GPU path, checked on the CPU: the graphed steps' logic, concurrent training, and the GPU check's dry run."""
import json
import sys
from pathlib import Path

import pytest
import torch

from fmnist_core import RunStore
from fmnist_core import cudagraph
from fmnist_core.gpu import Deadline, train_concurrently
from fmnist_core.models import make_model
from fmnist_core.train import _epoch_seed, _prepare, make_optimizer, train_one_epoch

from conftest import tiny_specs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Replay:
    """A stand-in for a CUDA graph on the CPU: replaying runs the captured body, gradients from None."""

    def __init__(self, body):
        self.body = body
        self.replays = 0

    def replay(self):
        self.body.__self__.optimizer.zero_grad(set_to_none=True)
        self.body()
        self.replays += 1


def _model(spec):
    torch.manual_seed(spec.seed + spec.init_seed_offset)
    model = _prepare(make_model(spec), torch.device("cpu"))
    return model, make_optimizer(model, spec.optimizer)


@pytest.mark.parametrize("name", ["scratch", "autoencoder"])
def test_graphed_steps_take_the_same_steps_as_the_eager_loop(tiny_split, monkeypatch, name):
    """Warm-up, capture, replays and the partial last batch after them: the eager loop's numbers."""
    graphs = []
    monkeypatch.setattr(cudagraph, "capture", lambda body: graphs.append(_Replay(body)) or graphs[-1])
    spec = tiny_specs()[name]
    x, y = tiny_split.train_x[:450], (None if name == "autoencoder" else tiny_split.train_y[:450])
    eager_model, eager_opt = _model(spec)
    graphed_model, graphed_opt = _model(spec)
    steps = cudagraph.GraphedSteps(graphed_model, graphed_opt, x, y, spec.batch_size, spec.input_range,
                                   spec.target_range, name == "autoencoder", 0.0, "fp32")
    for epoch in (1, 2):
        a = train_one_epoch(eager_model, eager_opt, x, y, spec.batch_size, spec.seed, epoch)
        b = train_one_epoch(graphed_model, graphed_opt, x, y, spec.batch_size, spec.seed, epoch, graphed=steps)
        assert a == pytest.approx(b, rel=1e-6)
    assert len(graphs) == 1 and graphs[0].replays == 2 * 4 - cudagraph.WARMUP_STEPS   # 4 full batches an epoch
    for (k, pa), pb in zip(eager_model.state_dict().items(), graphed_model.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=k)


def test_a_failed_capture_goes_on_eagerly(tiny_split, monkeypatch):
    def broken(body):
        raise RuntimeError("operation not permitted when stream is capturing")
    monkeypatch.setattr(cudagraph, "capture", broken)
    monkeypatch.setattr(cudagraph, "fallbacks", [])
    spec = tiny_specs()["scratch"]
    model, opt = _model(spec)
    steps = cudagraph.GraphedSteps(model, opt, tiny_split.train_x[:500], tiny_split.train_y[:500], 100,
                                   "signed", "signed", False, 0.0, "fp32")
    loss = train_one_epoch(model, opt, tiny_split.train_x[:500], tiny_split.train_y[:500], 100, 0, 1, graphed=steps)
    assert loss > 0 and steps.graph is None and steps.failed.startswith("RuntimeError: operation not permitted")
    assert cudagraph.fallbacks == [steps.failed]


def test_why_not_names_what_keeps_a_run_eager():
    spec = tiny_specs()["scratch"]
    model, opt = _model(spec)
    assert cudagraph.why_not(model, opt, spec.recipe, torch.device("cpu")) == "not on CUDA"
    assert _epoch_seed(0, 1) == 1                  # the graphed path seeds epochs as the eager one


def test_train_concurrently_respects_dependencies_and_reports_failures(tmp_path, fmnist):
    specs = [tiny_specs(epochs=1)[k] for k in ("autoencoder", "finetune")]
    errors = []
    done = train_concurrently(specs, fmnist, RunStore(tmp_path), "cpu", on_error=lambda s, e: errors.append(s.name))
    assert set(done) == {s.run_id for s in specs} and not errors
    # a cap reached stops the runs, reported per run, and the classifiers that start from them are not trained
    store = RunStore(tmp_path / "capped")
    done = train_concurrently(specs, fmnist, store, "cpu", callback=Deadline(-1),
                              on_error=lambda s, e: errors.append((s.name, type(e).__name__)))
    assert not done and ("reference-autoencoder", "TimeUp") in errors


def test_train_concurrently_stacks_seeds_after_the_autoencoders_they_start_from(tmp_path, fmnist):
    """Two seeds of the autoencoder and of finetune: two stacks of two, the second after the first;
    each finetune starts from its own seed's autoencoder. A stack stopped fails each of its runs."""
    seeds = [tiny_specs(epochs=1, seed=s) for s in (0, 1)]
    aes, fts = [x["autoencoder"] for x in seeds], [x["finetune"] for x in seeds]
    assert [f.pretrained_from for f in fts] == [a.run_id for a in aes]
    store, errors = RunStore(tmp_path / "stacked"), []
    done = train_concurrently(fts + aes, fmnist, store, "cpu", workers=2, together=True,
                              on_error=lambda s, e: errors.append(s.name))
    assert set(done) == {s.run_id for s in aes + fts} and not errors
    for group in (aes, fts):
        for s in group:
            m = store.verify(s.run_id)
            assert m["complete"] and m["provenance"]["trained_together"] == [x.run_id for x in group]
    assert [store.manifest(f.run_id)["provenance"]["encoder_source"]["run"] for f in fts] == [a.run_id for a in aes]
    capped = RunStore(tmp_path / "capped")
    done = train_concurrently(aes + fts, fmnist, capped, "cpu", together=True, callback=Deadline(-1),
                              on_error=lambda s, e: errors.append((s.name, type(e).__name__)))
    assert not done and sorted(errors) == sorted([("reference-autoencoder", "TimeUp")] * 2 +
                                                 [("reference-finetune", "RuntimeError")] * 2)


def test_the_gpu_check_runs_on_the_cpu_with_dry_run(tmp_path, capsys):
    from benchmarks import gpu_check
    out = tmp_path / "out"
    rc = gpu_check.main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "work"),
                         "--extra-presets", "no-such-preset,reference-frozen_random", "--extra-seeds", "0"])
    printed = capsys.readouterr().out
    report = json.loads((out / "gpu-check.json").read_text())
    assert rc == 0, report
    parts = ("correctness", "protocol", "study", "together", "extras")
    assert {p: report["parts"][p]["status"] for p in parts} == dict.fromkeys(parts, "ok")
    assert report["parts"]["bf16"]["status"] in ("ok", "skipped")        # skipped on a CPU without bf16 units
    c = report["parts"]["correctness"]
    assert c["resumed_from_epoch"] == 2 and c["evaluate_matches_record"]
    protocol = json.loads((out / "gpu-protocol.json").read_text())
    assert [r["label"] for r in protocol["runs"]] == ["autoencoder", "scratch", "finetune", "frozen_random",
                                                      "frozen_pretrained"]
    assert all(r["complete"] for r in protocol["runs"]) and protocol["wall_s"] > 0
    stacked = json.loads((out / "gpu-study-together.json").read_text())
    assert sorted((r["label"], r["seed"], r["trained_together"]) for r in stacked["runs"]) == sorted(
        (label, seed, 2) for seed in (0, 1) for label in ("autoencoder", "finetune", "frozen_random"))
    assert all(r["complete"] for r in stacked["runs"])
    extras = report["parts"]["extras"]
    assert "no preset 'no-such-preset'" in extras["presets"]["no-such-preset"]
    assert extras["pack"]["runs"] == [r["run"] for r in extras["runs"]]
    files = {f.name for f in out.iterdir()}
    assert {"gpu-check.json", "gpu-protocol.json", "gpu-study.json", "gpu-study-together.json",
            "gpu-correctness-run.tar.gz", "gpu-manifests.tar.gz", "gpu-extra-runs.tar.gz"} <= files and len(files) <= 8
    assert "GPU check summary" in printed.splitlines()[-10:][1] or "GPU check summary" in printed
    # the packed run loads and evaluates here as a store of its own
    import tarfile

    from benchmarks.check_gpu_run import check
    with tarfile.open(out / "gpu-correctness-run.tar.gz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert all(r["agree"] for r in check(str(tmp_path / "unpacked")).values())


def test_the_gpu_check_can_run_each_part_in_a_process_of_its_own(tmp_path):
    """What the GPU run does by default: a part's process that dies costs that part only."""
    from benchmarks import gpu_check
    out = tmp_path / "out"
    rc = gpu_check.main(["--dry-run", "--isolate", "--out", str(out), "--skip", "correctness,protocol,study,bf16",
                         "--extra-presets", "no-such-preset"])
    report = json.loads((out / "gpu-check.json").read_text())
    assert rc == 0 and report["parts"]["extras"]["status"] == "ok"
    assert "no preset 'no-such-preset'" in report["parts"]["extras"]["presets"]["no-such-preset"]
