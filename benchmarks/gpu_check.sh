#!/usr/bin/env bash
# The GPU check of issue 27 (see benchmarks/gpu_check.py): run once on the GPU machine, from the repo root.
#
#   benchmarks/gpu_check.sh --data .gpu-data [--skip bf16,extras] [--extra-presets sketch-robust --extra-seeds 0,1,2]
#   benchmarks/gpu_check.sh --dry-run               # on the CPU, tiny, in well under a minute
#
# Results go to $OUT (default benchmarks/results/gpu-out): at most 9 files, gpu-check.log among them.
# A hard stop at 560 s (the parts stop themselves by 470 s); the summary table is printed last.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/benchmarks/results/gpu-out}"
export OUT
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
timeout -k 10 "${GPU_CHECK_TIMEOUT:-560}" "$PY" -u benchmarks/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu-check.log"
rc=${PIPESTATUS[0]}
echo "gpu_check exit status $rc; files in $OUT:"; ls -l "$OUT"
exit "$rc"
