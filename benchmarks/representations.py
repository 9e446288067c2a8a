"""Speed of the representation analyses on this machine, cold (nothing cached) and warm.

    nice .venv/bin/python benchmarks/representations.py [--out benchmarks/results/representations.json]

1. `cka_grid_s`: the CKA grid of two reference runs (scratch x finetune, every layer, 10,000 test
   images, 200 bootstrap resamples): the networks' activations streamed into Grams
   (`features_and_grams_s`), then the grid with its bootstrap (`grid_s`), nothing cached.
2. `page_later_visit_s`: a later visit of the Representations page (default view, the shipped store,
   a second AppTest run of the same session: Streamlit's caches warm).
3. `new_run_s`: a run outside the shipped cache against the reference set: CKA with each of the five
   reference runs plus its probes, in a store whose cache folder starts empty (the reference runs'
   features are then recomputed too), as a first visit of a newly trained run would.

To stand in for a CPU without AVX-512 on one that has it, force torch's, oneDNN's and MKL's kernels
to AVX2 (recorded in the file as `isa_forced`):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 nice .venv/bin/python \
        benchmarks/representations.py --skip page --out benchmarks/results/representations-avx2.json

Timings on a shared machine are noisy: the load average before and after is recorded beside them,
and each figure's process CPU time (`cpu_s`, all threads together): on an otherwise idle machine the
wall time of a two-thread computation is between cpu_s / 2 and cpu_s.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_core import RunStore, load_fashion_mnist  # noqa: E402
from benchmarks.machine import cpu_isa, cpu_model  # noqa: E402
from fmnist_core.analysis import cka, represent as R  # noqa: E402
from fmnist_core.presets import reference_runs  # noqa: E402

ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
NEW_RUN = "reference-scratch-fe3c9b99cb"      # a scratch run of another seed, with weights, not in the shipped cache


def commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cka_grid_seconds(store: RunStore, data) -> dict:
    ref = reference_runs(store)
    a, b = R.open_run(store, ref["scratch"], data), R.open_run(store, ref["finetune"], data)
    images, _ = R.split_images(data, "test")
    nblocks, m = cka.blocks(len(images))
    c0 = time.process_time()
    t0 = time.perf_counter()
    ga = R.run_grams(a.model, images, R.layer_names(a.model), m, a.label)
    gb = R.run_grams(b.model, images, R.layer_names(b.model), m, b.label)
    t1 = time.perf_counter()
    grid = cka.cka_from_grams(ga, gb, bootstrap=R.BOOTSTRAP)
    t2 = time.perf_counter()
    return {"total_s": round(t2 - t0, 2), "cpu_s": round(time.process_time() - c0, 2),
            "features_and_grams_s": round(t1 - t0, 2), "grid_s": round(t2 - t1, 2),
            "layers": [len(ga.k), len(gb.k)], "images": len(images), "blocks": [nblocks, m],
            "block3_block3": round(float(grid["cka"][3, 3]), 4)}


def page_later_visit_seconds() -> dict:
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=900)
    at.run()
    at.switch_page("pages/representations.py")
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    later, cpu = [], []
    for _ in range(3):
        c0, t0 = time.process_time(), time.perf_counter()
        at.run()
        later.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert not at.exception, at.exception
    return {"first_visit_s": round(first, 2), "later_visits_s": [round(x, 2) for x in later],
            "later_visits_cpu_s": [round(x, 2) for x in cpu]}


def new_run_seconds(data) -> dict:
    shipped = RunStore()
    ref = reference_runs(shipped)
    with tempfile.TemporaryDirectory() as tmp:
        for rid in [*ref.values(), NEW_RUN]:           # the runs, without the shipped cache
            os.symlink(shipped.folder(rid), Path(tmp) / rid)
        store = RunStore(tmp)
        c0, t0 = time.process_time(), time.perf_counter()
        runs = [R.open_run(store, NEW_RUN, data)] + [R.open_run(store, rid, data) for rid in ref.values()]
        pairs = R.similarity_set(store, runs[:1] + runs[1:], data)
        t1 = time.perf_counter()
        rows = R.probes(store, runs[0], data)
        t2 = time.perf_counter()
    return {"run": NEW_RUN, "total_s": round(t2 - t0, 2), "cpu_s": round(time.process_time() - c0, 2),
            "similarity_s": round(t1 - t0, 2),
            "probes_s": round(t2 - t1, 2), "pairs": len(pairs), "probe_rows": len(rows),
            "note": "the reference runs' Grams computed again too (a fresh cache folder)"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/representations.json"))
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: grid,page,new")
    args = ap.parse_args()
    skip = set(args.skip.split(",")) - {""}
    import torch
    data = load_fashion_mnist()
    out = {"cpu": cpu_model(), "cpu_isa": cpu_isa(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "commit": commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_before": os.getloadavg(),
           # kernels forced to an older instruction set, to stand in for the CPUs without AVX-512
           "isa_forced": {k: os.environ[k] for k in ISA_ENV if k in os.environ}}
    if "grid" not in skip:
        out["cka_grid"] = cka_grid_seconds(RunStore(), data)
        print(json.dumps(out["cka_grid"]), file=sys.stderr, flush=True)
    if "page" not in skip:
        out["page"] = page_later_visit_seconds()
        print(json.dumps(out["page"]), file=sys.stderr, flush=True)
    if "new" not in skip:
        out["new_run"] = new_run_seconds(data)
    out["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
