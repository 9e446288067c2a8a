import torch

from benchmarks.harness import flops_per_image, run_benchmark, _bench_model


def test_flops_per_image_match_the_layer_shapes():
    # Forward: 2 x (28*28*32*9 + 14*14*64*32*9 + 7*7*64*64*9 + 3136*128 + 128*10) multiply-adds.
    forward = 2 * (225_792 + 3_612_672 + 1_806_336 + 401_408 + 1_280)
    assert flops_per_image(_bench_model("finetune", None, 0)) == {"train": 3 * forward, "eval": forward}
    frozen = flops_per_image(_bench_model("frozen_random", None, 0))
    assert frozen["train"] == forward + 2 * 2 * (401_408 + 1_280)


def test_a_tiny_benchmark_times_both_loops_and_counts_the_work():
    r = run_benchmark(device="cpu", batches=2, models=("finetune",), reference=True)
    assert r["train_images_timed"] == 200 and r["eval_images_timed"] == 280
    e = r["models"]["finetune"]
    for loop in ("reference", "ours"):
        assert len(e[loop]) and e[loop]["measured_train_s"] > 0 and e[loop]["measured_eval_s"] > 0
    assert r["speedup"] == e["speedup"] and r["threads"] == torch.get_num_threads()
    assert 36 < e["train_mflop_per_image"] < 37 and 12 < e["eval_mflop_per_image"] < 12.2
    assert "finetune" in r["summary"] and "at 100% it would take" in r["summary"]


def test_the_benchmarks_figures_from_given_timings(monkeypatch):
    """Timings made up, figures worked out by hand: 3 training pieces of 1,000 images and evaluation
    pieces of 1,000, 1,000, 1,000, 600 and 600; the reference trains 1,000 and evaluates 2,000 images/s,
    ours 4,000 and 7,000, but our last training piece stalls (ten times slower). Training and evaluation
    gain differently (4x and 3.5x), so the whole epoch's speedup (85 s / 22.5 s = 3.78x) is neither."""
    from benchmarks import harness as bench

    def timing(train_per_s, eval_per_s, stall=1.0):
        return {"train_s": [1000 / train_per_s, 1000 / train_per_s, stall * 1000 / train_per_s],
                "eval_s": [n / eval_per_s for n in (1000, 1000, 1000, 600, 600)]}

    monkeypatch.setattr(bench, "_reference_loaders", lambda *a, **k: None)
    monkeypatch.setattr(bench, "_torchvision_root", lambda source, tmp: tmp)
    monkeypatch.setattr(bench, "_time_reference", lambda *a, **k: timing(1000, 2000))
    monkeypatch.setattr(bench, "_time_ours", lambda *a, **k: timing(4000, 7000, stall=10))
    monkeypatch.setattr(bench, "matmul_peak", lambda dev, **k: {"mm_gflops": 500.0, "peak_gflops": 1000.0})
    r = run_benchmark(device="cpu", batches=30, models=("finetune",), reference=True)
    e = r["models"]["finetune"]
    # An epoch: 50,000 trained and 70,000 evaluated images.
    assert (e["reference"]["train_epoch_s"], e["reference"]["eval_epoch_s"], e["reference"]["epoch_s"]) == (50, 35, 85)
    # The median piece counts: the stall shows only in the total-time rate, and flags a busy machine.
    assert (e["ours"]["train_images_per_s"], e["ours"]["train_images_per_s_total"]) == (4000, 1000)
    assert (e["ours"]["train_epoch_s"], e["ours"]["eval_epoch_s"], e["ours"]["epoch_s"]) == (12.5, 10, 22.5)
    assert (e["speedup"], e["train_speedup"], e["eval_speedup"]) == (3.78, 4.0, 3.5) and r["machine_looked_busy"]
    # 36.28 MFLOP per trained and 12.09 per evaluated image: 2,660.9 GFLOP an epoch, 2.66 s at 1,000 GFLOP/s.
    assert (e["train_gflops"], e["share_of_peak"], e["share_of_mm_peak"]) == (145.1, 0.145, 0.29)
    # 85 / 2.661 = 31.94x the reference, and our 22.5 s epoch runs at 2.661 / 22.5 = 11.8% of peak.
    assert (e["epoch_s_at_peak"], e["speedup_at_peak"], e["epoch_share_of_peak"]) == (2.66, 31.94, 0.118)


def test_the_peak_bound_is_left_out_where_a_frozen_encoder_skips_work():
    r = run_benchmark(device="cpu", batches=2, models=("frozen_random",), reference=False)
    e = r["models"]["frozen_random"]
    assert e["epoch_s_at_peak"] is None and e["speedup_at_peak"] is None
    assert "at 100% it would take" not in r["summary"]


def test_the_reference_loop_uses_the_studys_own_layers_with_our_initial_weights():
    import torch
    from torch import nn
    from benchmarks.harness import _tutorial_model
    from fmnist_core.models import Dropout
    for name in ("finetune", "frozen_random"):
        ref, ours = _tutorial_model(name, None, 3), _bench_model(name, None, 3)
        assert not any(isinstance(m, Dropout) for m in ref.modules())      # torch's nn.Dropout only
        kinds = [type(m) for m in ref[:4]]
        assert kinds == [nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Dropout]      # the study's order
        ref.eval(), ours.eval()
        x = torch.rand(5, 1, 28, 28) * 2 - 1
        with torch.no_grad():
            assert torch.allclose(ref(x), ours(x), atol=1e-5)
        trains = [p.requires_grad for p in ref.parameters()]
        assert trains == [p.requires_grad for p in ours.parameters()]
