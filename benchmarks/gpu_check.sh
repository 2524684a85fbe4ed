#!/usr/bin/env bash
# Issue 7 GPU check: one prepared script for one GPU machine with no network and no model files
# (real-size models are built from configs with random weights). Runs in well under 8 minutes:
#   1. the test suite's `gpu` tests (tests marked gpu; skipped without CUDA),
#   2. benchmarks/perf_gpu.py: GPT-2-large-size reward model bf16 vs fp32, adapter inference, one GRPO step,
#   3. benchmarks/gpu_vllm_check.py (issue 23): the tiny GRPO config with TRL's vLLM generation (colocate) and
#      report_to tensorboard; without CUDA or vllm it checks the one-line error instead.
# Without CUDA (or with --dry-run) it runs the same steps on the CPU at tiny sizes, so it can be tested.
#
#   benchmarks/gpu_check.sh [--dry-run]        (PYTHON=/path/to/python to pick the interpreter)
# Needs: torch (CUDA build on the GPU machine), transformers, trl, peft, accelerate, datasets, pytest, and this
# repository (it is put on PYTHONPATH, so no install is needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PREFORCH_CACHE="${PREFORCH_CACHE:-$(mktemp -d)}"   # never touch a user's cache

DRY=""
if [ "${1:-}" = "--dry-run" ] || ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  DRY="--dry-run"
fi
START=$(date +%s)
echo "== preforch GPU check ($([ -n "$DRY" ] && echo "dry run on the CPU" || echo "GPU")), $(date -u '+%Y-%m-%d %H:%M UTC')"
if [ -z "$DRY" ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
"$PYTHON" -c "import torch, transformers, trl; print('torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__)"

echo "== 1/3 gpu tests"
if [ -z "$DRY" ]; then
  timeout 180 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests
else
  # no CUDA: the gpu tests must still collect and skip cleanly
  timeout 120 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu -rs tests/benchmarks/test_gpu.py
fi

echo "== 2/3 benchmarks/perf_gpu.py"
timeout 300 "$PYTHON" benchmarks/perf_gpu.py $DRY --repeats "${REPEATS:-3}"

echo "== 3/3 benchmarks/gpu_vllm_check.py"
timeout 300 "$PYTHON" benchmarks/gpu_vllm_check.py $DRY
echo "== done in $(( $(date +%s) - START )) s"
