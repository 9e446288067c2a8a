"""Studies: the files load and build, bad files are named, tables put ours beside the published,
and studies run on Ray Tune: a local instance of their own, retries, resume, a real local cluster."""
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmnist_core import RunStore
from fmnist_core.presets import reference_specs
from fmnist_core.runs import DEFAULT_DIR
from fmnist_core.study import StudyError, list_studies, load_study, table

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"epochs": 1, "subset": 600}


def test_every_study_file_loads_and_every_trial_builds():
    studies = {s.name: s for s in list_studies()}
    assert {"r2026-table1", "r2025-table4", "r2025-table5", "r2025-table6", "r2025-table8", "r2025-table9",
            "r2024", "readme", "tutorial"} <= set(studies)
    for s in studies.values():
        items = s.specs()
        assert len(items) == sum(t.seeds or s.seeds for t in s.trials)
        seen = set()
        for trial, _, spec in items:            # an autoencoder always comes before its classifiers
            assert spec.pretrained_from is None or spec.pretrained_from in seen, (s.name, trial.label)
            seen.add(spec.run_id)
            for metric in trial.published:
                assert metric in s.metrics


def test_table_one_trials_are_the_shipped_reference_runs_at_seed_0():
    ids = {spec.run_id for _, seed, spec in load_study("r2026-table1").specs() if seed == 0}
    assert ids == {spec.run_id for spec in reference_specs().values()}


def test_the_beyond_recipe_study_builds_every_change_alone_and_together_at_three_seeds():
    study = load_study("beyond-recipe")
    assert study.seeds == 3
    items = study.specs()
    labels = {t.label for t, _, _ in items}
    for scheme in ("scratch", "finetune"):
        assert f"{scheme}: reference recipe" in labels and f"{scheme}: all together" in labels
    together = next(spec for t, s, spec in items if t.label == "scratch: all together" and s == 0)
    r = together.recipe
    assert (r.translate, r.hflip, r.label_smoothing, r.schedule, r.select) == (2, True, 0.1, "cosine", "best")
    assert together.optimizer.name == "adamw"
    assert next(spec for t, s, spec in items if t.label == "scratch: reference recipe" and s == 0).run_id == \
        reference_specs()["scratch"].run_id


def test_quick_sizes_make_other_runs_recorded_in_their_specs():
    study = load_study("r2025-table8")
    full = {spec.run_id for _, _, spec in study.specs()}
    quick = study.specs(**QUICK)
    assert not full & {spec.run_id for _, _, spec in quick}
    assert all((spec.epochs, spec.subset) == (1, 600) for _, _, spec in quick)
    ae = next(spec for _, _, spec in quick if spec.kind == "autoencoder")
    assert next(spec for t, _, spec in quick if t.pretrain).pretrained_from == ae.run_id


def test_seeds_run_each_trial_at_n_seeds(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('name = "s"\ntitle = "t"\nsource = "x"\nbase = "reference-scratch"\nseeds = 3\n'
                 'metrics = ["max_val_acc"]\n[[trials]]\nlabel = "a"\n')
    specs = load_study(f).specs()
    assert sorted(spec.seed for _, _, spec in specs) == [0, 1, 2] and len({s.run_id for *_, s in specs}) == 3
    f.write_text(f.read_text() + '[[trials]]\nlabel = "b"\nseeds = 1\nset = { "optimizer.lr" = 0.01 }\n')
    specs = load_study(f).specs()                    # an exploration trial at fewer seeds than the study's
    assert sorted(seed for t, seed, _ in specs if t.label == "b") == [0]
    assert sorted(seed for t, seed, _ in specs if t.label == "a") == [0, 1, 2]


def test_differences_beyond_the_noise_of_the_seeds_are_marked():
    from fmnist_core.__main__ import _markdown_table
    from fmnist_core.study import difference_test, difference_tests, gain_test
    # (mean of 3) - (one published run): error std * sqrt(4/3) on 2 degrees, t(0.975, 2) = 4.3027 (a t table)
    noise, p = difference_test(0.0075, 0.003, 3)
    assert noise == pytest.approx(4.3027 * 0.003 * math.sqrt(4 / 3), rel=1e-4) and 0.05 < p < 0.5  # 2 SE: "beyond"
    assert difference_test(noise, 0.003, 3)[1] == pytest.approx(0.05)                 # at the edge: p = 0.05
    assert difference_test(0.02, 0.003, 3)[1] < 0.05 and difference_test(0.0, 0.0, 3)[1] == 1.0
    assert set(difference_tests({"a": 0.0075, "c": 0.5}, {"a": 0.003}, 3)) == {"a"}    # no spread, no test
    # Welch: equal spreads at 3 seeds each give 4 degrees, t(0.975, 4) = 2.7764
    noise, p = gain_test(0.01, (0.002, 3), (0.002, 3))
    assert noise == pytest.approx(2.7764 * math.sqrt(2 * 0.002 ** 2 / 3), rel=1e-4) and p < 0.01
    study = load_study("r2026-table1")
    row = {"label": "scratch", "status": ["complete"] * 3, "runs": "complete", "seeds": 3, "claim": "",
           "ours": {"final_test_acc": 0.9207, "test_accuracy": 0.9207}, "std": {"final_test_acc": 0.001},
           "published": {"final_test_acc": 0.926}, "difference": {"final_test_acc": -0.0053},
           "beyond_noise": {"final_test_acc": True}}
    md = _markdown_table(study, [row])
    assert "0.9207 ± 0.0010 / 0.9260 (**-0.0053**)" in md and "beyond the noise" in md and "p < 0.05" in md
    md = _markdown_table(study, [dict(row, beyond_noise={"final_test_acc": False})])
    assert "(-0.0053)" in md and "**" not in md


@pytest.mark.parametrize("text, message", [
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "r2024-autoencoder"\nmetrics = ["min_val_mse"]\nbogus = 1\n'
     '[[trials]]\nlabel = "a"\n', "unknown key 'bogus'"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "r2024-autoencoder"\nmetrics = ["nope"]\n[[trials]]\nlabel = "a"\n',
     "unknown metric 'nope'"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "r2024-autoencoder"\nmetrics = ["min_val_mse"]\n'
     '[[trials]]\nlabel = "a"\nset = { "optimizer.lrr" = 1 }\n', "trial 'a': unknown field 'optimizer.lrr'"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "r2024-autoencoder"\nmetrics = ["min_val_mse"]\n'
     '[[trials]]\nlabel = "c"\npreset = "r2024-finetune"\n', "name the autoencoder trial"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "r2024-autoencoder"\nmetrics = ["min_val_mse"]\n'
     '[[trials]]\nlabel = "c"\npreset = "r2024-finetune"\npretrain = "zz"\n', "no trial labelled 'zz'"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "nope"\nmetrics = ["min_val_mse"]\n', "unknown preset 'nope'"),
    ("name = ", "not valid TOML"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "reference-scratch"\nmetrics = ["max_val_acc"]\n'
     '[[trials]]\nlabel = "a"\nseeds = 2\n', "trial 'a': seeds = 2 is more than the study's 1"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "reference-scratch"\nmetrics = ["max_val_acc"]\n'
     '[[trials]]\nlabel = "a"\nseeds = 0\n', "trial 'a': 'seeds' must be a whole number >= 1"),
    ('name = "s"\ntitle = "t"\nsource = "x"\nbase = "reference-scratch"\nmetrics = ["max_val_acc"]\n'
     '[[trials]]\nlabel = "a"\nagainst = "zz"\n', "trial 'a': against 'zz' is no trial's label"),
])
def test_a_bad_study_file_gets_one_message_naming_it(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(StudyError) as e:
        load_study(f)
    assert str(f) in str(e.value) and message in str(e.value)


def test_cli_study_list_and_table_of_the_shipped_runs(capsys, fmnist):
    from fmnist_core.__main__ import main
    assert main(["study", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all({"name", "title", "source", "trials"} <= set(r) for r in rows)
    assert main(["study", "table", "r2026-table1", "--json", "--checkpoints", str(DEFAULT_DIR)]) == 0
    rows = {r["label"]: r for r in json.loads(capsys.readouterr().out)}
    ft = rows["finetune"]
    assert {"label", "overrides", "ours", "published", "run_ids"} <= set(ft)
    from shipped_expected import mean_std, seed_values
    mean, std = mean_std(seed_values(RunStore(DEFAULT_DIR), "r2026-table1", "finetune"))   # from the manifests
    assert ft["seeds"] == len(ft["run_ids"]) == 3
    assert ft["ours"]["test_accuracy"] == pytest.approx(mean) and ft["std"]["test_accuracy"] == pytest.approx(std)
    assert ft["published"]["final_test_acc"] == 0.9276
    assert ft["difference"]["final_test_acc"] == pytest.approx(ft["ours"]["final_test_acc"] - 0.9276)
    assert rows["autoencoder"]["ours"]["test_mse"] < 0.02
    assert main(["study", "table", "r2026-table1", "--markdown", "--checkpoints", str(DEFAULT_DIR)]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| trial | final_train_loss: ours / published (diff) |") and md[1].startswith("|---|")
    finetune_row = next(line for line in md if line.startswith("| finetune"))
    from scipy import stats
    p = 2 * stats.t.sf(abs(mean - 0.9276) / (std * (1 + 1 / 3) ** 0.5), 2)   # one published run, 2 degrees
    bold = "**" if p < 0.05 else ""
    assert f"{mean:.4f} ± {std:.4f} / 0.9276 ({bold}{mean - 0.9276:+.4f}{bold})" in finetune_row
    assert main(["study", "table", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


def _study_file(tmp_path, trials: str, name="two") -> Path:
    f = tmp_path / f"{name}.toml"
    f.write_text(f'name = "{name}"\ntitle = "t"\nsource = "test"\nbase = "r2025-arch1"\n'
                 f'metrics = ["min_val_mse", "max_val_acc"]\n{trials}')
    return f


DEPENDENT = ('[[trials]]\nlabel = "ae"\n[[trials]]\nlabel = "head"\npreset = "r2025-frozen_pretrained"\n'
             'pretrain = "ae"\nset = { "encoder.blocks" = [{ channels = 16, dropout_before_pool = true }], '
             '"head.hidden" = [16] }\n')


def test_a_study_runs_on_its_own_local_ray_instance_and_skips_what_is_complete(tmp_path, monkeypatch):
    from fmnist_core.tune import run_study
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    study = load_study(_study_file(tmp_path, DEPENDENT))
    store = RunStore(tmp_path / "ck")
    events = []
    summary = run_study(study, store, progress=events.append, **QUICK, fail_once_dir=str(tmp_path / "fails"))
    # Each trial failed once on purpose, was retried, and finished; the classifier after its autoencoder.
    assert (summary["completed"], summary["failed"], summary["skipped"]) == (2, 0, 0), summary
    assert summary["ray_address"] and summary["wall_s"] > 0
    assert len(list((tmp_path / "fails").iterdir())) == 2
    ids = [spec.run_id for _, _, spec in study.specs(**QUICK)]
    for rid in ids:
        assert store.verify(rid)["complete"]
    assert [e["run_id"] for e in events if e["type"] == "epoch"] == ids
    assert store.manifest(ids[1])["provenance"]["encoder_source"]["run"] == ids[0]
    again = run_study(study, store, **QUICK)
    assert (again["completed"], again["skipped"]) == (0, 2)
    rows = table(study, store, **QUICK)
    assert rows[1]["ours"]["max_val_acc"] > 0 and rows[0]["ours"]["min_val_mse"] > 0


def test_a_studys_stackable_trials_train_together_as_one_tune_trial(tmp_path, monkeypatch):
    """Seeds and a learning rate stack into one trial; a trial with another recipe trains alone. Each
    run gets its own complete, verified manifest saying which runs it trained with."""
    from fmnist_core.tune import run_study
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    f = tmp_path / "stack.toml"
    f.write_text('name = "stack"\ntitle = "t"\nsource = "x"\nbase = "reference-scratch"\nseeds = 2\n'
                 'metrics = ["max_val_acc"]\n[[trials]]\nlabel = "a"\n[[trials]]\nlabel = "b"\nseeds = 1\n'
                 'set = { "optimizer.lr" = 0.01 }\n[[trials]]\nlabel = "c"\nseeds = 1\n'
                 'set = { "recipe.translate" = 2 }\n')
    study = load_study(f)
    store = RunStore(tmp_path / "ck")
    events = []
    summary = run_study(study, store, progress=events.append, together=True, **QUICK)
    by_label = {(t.label, seed): spec.run_id for t, seed, spec in study.specs(**QUICK)}
    stacked = sorted([by_label["a", 0], by_label["a", 1], by_label["b", 0]])
    assert (summary["completed"], summary["failed"]) == (4, 0), summary
    assert [sorted(group) for group in summary["together"]] == [stacked]
    for rid in stacked:
        m = store.verify(rid)
        assert m["complete"] and sorted(m["provenance"]["trained_together"]) == stacked
    assert "trained_together" not in store.verify(by_label["c", 0])["provenance"]
    assert sorted(e["run_id"] for e in events if e["type"] == "epoch") == sorted(by_label.values())
    with pytest.raises(ValueError, match="leave out storage"):
        run_study(study, RunStore(tmp_path / "other"), together=True, storage=str(tmp_path / "s"), **QUICK)


def test_a_study_killed_midway_finishes_what_is_left_when_started_again(tmp_path):
    f = _study_file(tmp_path, '[[trials]]\nlabel = "a"\n', name="killed")
    ck = tmp_path / "ck"
    cmd = [sys.executable, "-m", "fmnist_core", "study", "run", str(f), "--epochs", "20", "--subset", "600",
           "--checkpoints", str(ck), "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    manifest = None
    while manifest is None and proc.poll() is None:   # until the first epoch is written (or the driver ends)
        manifest = next(iter(ck.glob("*/manifest.json")), None)
        time.sleep(0.05)
    assert manifest is not None, "the study ended before its first epoch was written"
    os.killpg(proc.pid, signal.SIGKILL)            # the driver and its Ray instance, at once
    proc.wait()
    store = RunStore(ck)
    rid = manifest.parent.name
    partial = store.manifest(rid)                  # whatever was written last: the resumed run keeps it
    assert not partial["complete"]
    done = len(partial["history"])
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["completed"] == 1
    m = store.verify(rid)
    assert m["complete"] and m["history"][:done] == partial["history"]     # resumed, not restarted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path, monkeypatch):
    """A real Ray cluster on this machine: `ray start --head --block`, ended through its own process.

    Token authentication on, as Ray 2.60 has it by default: head and driver share the mode and token.
    """
    import secrets
    port = _free_port()
    ray_bin = Path(sys.executable).with_name("ray")
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    for k, v in auth.items():
        monkeypatch.setenv(k, v)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **auth}
    import tempfile
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")     # short: Ray's socket paths must fit 107 bytes
    proc = subprocess.Popen([str(ray_bin), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             f"--temp-dir={ray_tmp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    while proc.poll() is None:                    # until the head answers, or its process ends
        probe = subprocess.run([str(ray_bin), "status", f"--address={address}"], env=env, capture_output=True)
        if probe.returncode == 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the Ray head exited ({proc.returncode}) before it answered")
    yield address
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:             # a clean stop can take 30 s; the whole group goes
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def _run_cli(args: list[str]) -> dict:
    """`python -m fmnist_core ...` in a driver process of its own (Ray keeps one auth token per process)."""
    out = subprocess.run([sys.executable, "-m", "fmnist_core", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_a_real_local_cluster_receives_a_study_by_address(tmp_path, ray_cluster):
    f = _study_file(tmp_path, '[[trials]]\nlabel = "a"\n[[trials]]\nlabel = "b"\nset = { "encoder.dropout" = 0.1 }\n')
    # Through Tune's checkpoints on shared storage (a cluster's workers need not see the driver's disk):
    # the runs land in the driver's store. Writing the store directly is tested on the local instance.
    ck, shared = tmp_path / "ck", tmp_path / "shared"
    summary = _run_cli(["study", "run", str(f), "--address", ray_cluster, "--checkpoints", str(ck),
                        "--storage", str(shared), "--epochs", "1", "--subset", "600", "--json"])
    assert summary["completed"] == 2 and summary["ray_address"].endswith(ray_cluster.split(":")[1])
    store = RunStore(ck)
    assert len(store.run_ids()) == 2 and all(store.verify(r)["complete"] for r in store.run_ids())


def test_a_study_already_running_on_a_store_is_refused_at_once(tmp_path, capsys):
    from fmnist_core.__main__ import main
    from fmnist_core.study import acquire_study, running_study
    store = RunStore(tmp_path / "ck")
    lock = acquire_study(store, "tutorial", {"epochs": 1, "subset": 600})
    try:
        assert running_study(store, "tutorial")["pid"] == os.getpid()
        with pytest.MonkeyPatch.context() as mp:      # refused before any trial or Ray instance starts
            mp.setattr("fmnist_core.tune._run_study", lambda *a, **k: pytest.fail("the study was started"))
            assert main(["study", "run", "tutorial", "--checkpoints", str(store.root), "--epochs", "1"]) == 3
        assert "already running" in capsys.readouterr().err
    finally:
        lock.release()
    assert running_study(store, "tutorial") is None


def test_mse_metrics_belong_to_autoencoders_only(trained_store, tiny_ids):
    from fmnist_core.study import run_metrics
    clf = run_metrics(trained_store.manifest(tiny_ids["scratch"]), ["min_val_mse", "min_val_loss", "max_val_acc"])
    assert set(clf) == {"min_val_loss", "max_val_acc"}               # its cross-entropy is no MSE
    ae = run_metrics(trained_store.manifest(tiny_ids["autoencoder"]), ["min_val_mse", "test_mse"])
    assert set(ae) == {"min_val_mse", "test_mse"} and ae["min_val_mse"] > 0


def test_best_val_test_acc_is_the_test_accuracy_of_the_first_best_validation_epoch():
    from fmnist_core.study import run_metrics
    h = [{"epoch": e, "val_acc": v, "test_acc": t, "train_acc": 0.9}
         for e, (v, t) in enumerate([(0.90, 0.89), (0.93, 0.92), (0.93, 0.95), (0.91, 0.90)], 1)]
    m = {"kind": "classifier", "history": h, "spec": {"recipe": {"select": "last"}}, "best_epoch": 2}
    assert run_metrics(m, ["best_val_test_acc", "test_accuracy"]) == {"best_val_test_acc": 0.92, "test_accuracy": 0.90}


def test_only_complete_runs_enter_a_trials_mean_over_seeds():
    from fmnist_core.presets import preset
    from fmnist_core.study import over_seeds, over_specs
    spec = preset("reference-scratch").spec
    specs = [spec.replace(seed=s) for s in range(3)]

    def run(acc, complete):
        return {"kind": "classifier", "complete": complete, "spec": {"recipe": {"select": "last"}},
                "history": [{"epoch": 1, "val_acc": acc, "test_acc": acc, "train_acc": acc}]}

    class Store:       # what over_specs asks of a store: find a spec's run, read its manifest
        runs = {specs[0].run_id: run(0.92, True), specs[1].run_id: run(0.60, False)}

        def find(self, s):
            return s.run_id if s.run_id in self.runs else None

        def manifest(self, rid):
            return self.runs[rid]

    got = over_specs(Store(), specs, ["test_accuracy", "max_val_acc"])
    assert got["status"] == ["complete", "partial", "missing"] and got["seeds"] == 1
    assert got["ours"] == {"test_accuracy": 0.92, "max_val_acc": 0.92} and got["std"] == {}  # not pulled to 0.76
    assert over_seeds(Store(), spec) == {"mean": 0.92, "std": None, "seeds": 1, "run_ids": [specs[0].run_id]}


def test_a_trials_runs_are_summed_up_in_words():
    from fmnist_core.study import status_summary
    assert status_summary(["complete"] * 3) == "complete"
    assert status_summary(["missing", "missing"]) == "missing"
    assert status_summary(["partial"]) == "partial"
    assert status_summary(["complete", "partial", "missing"]) == "1 of 3 seeds complete, 1 partial"
    assert status_summary(["partial", "partial"]) == "0 of 2 seeds complete, 2 partial"
    assert status_summary(["complete", "training", "missing"]) == "1 of 3 seeds complete, 1 training"


def test_a_trial_against_another_gets_its_gain_and_whether_it_exceeds_the_noise(tmp_path):
    from fmnist_core.__main__ import _markdown_table
    f = tmp_path / "s.toml"
    f.write_text('name = "s"\ntitle = "t"\nsource = "x"\nbase = "reference-scratch"\nseeds = 3\n'
                 'metrics = ["test_accuracy"]\n[[trials]]\nlabel = "base"\n'
                 '[[trials]]\nlabel = "small"\nagainst = "base"\nset = { "recipe.translate" = 1 }\n'
                 '[[trials]]\nlabel = "big"\nagainst = "base"\nset = { "recipe.translate" = 2 }\n')
    study = load_study(f)
    # per trial, its test accuracy at seeds 0-2: "small" gains 0.002 (under its noise), "big" 0.02
    accs = {"base": [0.920, 0.922, 0.924], "small": [0.921, 0.925, 0.926], "big": [0.940, 0.942, 0.944]}
    runs = {spec.run_id: {"kind": "classifier", "complete": True, "spec": {"recipe": {"select": "last"}},
                          "history": [{"epoch": 1, "val_acc": 0.9, "test_acc": accs[t.label][seed], "train_acc": 1}]}
            for t, seed, spec in study.specs()}

    class Store:       # what table asks of a store: find a spec's run, read its manifest
        def find(self, spec):
            return spec.run_id

        def manifest(self, rid):
            return runs[rid]

    rows = {r["label"]: r for r in table(study, Store())}
    assert rows["base"]["gain"] == {} and rows["small"]["against"] == "base"
    assert rows["small"]["gain"]["test_accuracy"] == pytest.approx(0.002)
    assert rows["big"]["gain"]["test_accuracy"] == pytest.approx(0.020)
    # Welch's t-test: +0.002 is well within its 95% interval, +0.020 far beyond it
    assert rows["small"]["gain_beyond_noise"] == {"test_accuracy": False} and rows["small"]["gain_p"]["test_accuracy"] > 0.3
    assert rows["big"]["gain_beyond_noise"] == {"test_accuracy": True} and rows["big"]["gain_p"]["test_accuracy"] < 0.01
    se = math.sqrt(0.002 ** 2 / 3 + statistics.stdev(accs["small"]) ** 2 / 3)
    assert 2.7 * se < rows["small"]["gain_noise"]["test_accuracy"] < 3.2 * se          # t(0.975, ~3.8 degrees)
    md = _markdown_table(study, list(rows.values()))
    assert "| **+0.0200** |" in md and "| +0.0020 |" in md and "Welch's t-test" in md
