import math

from benchmarks.harness import flops_per_image, run_benchmark, _bench_model


def test_flops_per_image_match_the_layer_shapes():
    # Forward: 2 x (28*28*32*9 + 14*14*64*32*9 + 7*7*64*64*9 + 3136*128 + 128*10) multiply-adds.
    forward = 2 * (225_792 + 3_612_672 + 1_806_336 + 401_408 + 1_280)
    assert flops_per_image(_bench_model("finetune", None, 0)) == {"train": 3 * forward, "eval": forward}
    frozen = flops_per_image(_bench_model("frozen_random", None, 0))
    assert frozen["train"] == forward + 2 * 2 * (401_408 + 1_280)


def test_a_tiny_benchmark_reports_positive_figures():
    r = run_benchmark(device="cpu", batches=2, models=("finetune",), reference=True)
    for key in ("device", "torch", "threads", "peak_gflops", "mm_gflops", "speedup", "summary", "models"):
        assert key in r
    assert r["train_images_timed"] == 200 and r["eval_images_timed"] == 280
    e = r["models"]["finetune"]
    for loop in ("reference", "ours"):
        for key in ("train_images_per_s", "eval_images_per_s", "train_epoch_s", "eval_epoch_s", "epoch_s"):
            assert math.isfinite(e[loop][key]) and e[loop][key] > 0
        assert abs(e[loop]["epoch_s"] - e[loop]["train_epoch_s"] - e[loop]["eval_epoch_s"]) < 0.02
    assert e["speedup"] > 0 and r["speedup"] == e["speedup"]
    assert e["peak_gflops"] > 0 and e["train_gflops"] > 0 and 0 < e["share_of_peak"]
    assert 36 < e["train_mflop_per_image"] < 37 and 12 < e["eval_mflop_per_image"] < 12.2
    # The bound: the epoch's counted work (50,000 trained + 70,000 evaluated images) at the peak.
    work_gflop = (50_000 * e["train_mflop_per_image"] + 70_000 * e["eval_mflop_per_image"]) / 1e3
    assert math.isclose(e["epoch_s_at_peak"], work_gflop / e["peak_gflops"], rel_tol=0.01)
    assert math.isclose(e["speedup_at_peak"], e["reference"]["epoch_s"] / e["epoch_s_at_peak"], rel_tol=0.02)
    assert math.isclose(e["epoch_share_of_peak"], e["epoch_s_at_peak"] / e["ours"]["epoch_s"], rel_tol=0.02)
    assert "finetune" in r["summary"] and "at 100% it would take" in r["summary"]


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
