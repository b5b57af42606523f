#!/usr/bin/env bash
# The checks that need a GPU, sized for a short loan (at most 8 minutes on one GPU):
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. the CUDA tests (the fast path's, and the bf16 run format's greedy tokens against fp32 on
# the golden cases); 2. plain vs graphed greedy tokens of every released architecture (random
# weights, batch 1 and 32); 3. benchmarks.step_loop --gpu. JSON and a log go to OUTDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
exec > >(tee "$OUT/gpu_check.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
status=0
echo "== 1. CUDA tests"
timeout 150 "$PY" -m pytest -q tests/test_fast.py tests/test_released_cpu.py -k cuda \
    --junitxml="$OUT/cuda_tests.xml" || status=1
echo "== 2. plain vs graphed tokens"
timeout 180 "$PY" -m benchmarks.graph_equality --batches 1 32 --json "$OUT/graph_equality.json" || status=1
echo "== 3. step loop"
timeout 150 "$PY" -m benchmarks.step_loop --gpu --json "$OUT/step_loop_gpu.json" || status=1
echo "gpu_check done, status $status"
exit $status
