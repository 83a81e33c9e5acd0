#!/usr/bin/env bash
# Every benchmark's CUDA variant in one call, in under 8 minutes on one GPU; results in
# benchmarks/results/*_cuda.json, each with the machine (GPU name) it ran on.
#
#   make setup && .venv/bin/python -m nextquill.stages.base_model && benchmarks/gpu.sh
#
# Needs the converted base model (models/base, written by the base_model stage) and a CUDA build of torch.
# Not run yet: no GPU was lent to this project's sessions so far (docs/performance.md says what has run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'benchmarks/gpu.sh: no CUDA device')"
[ -f models/base/config.json ] || { echo "benchmarks/gpu.sh: run the base_model stage first (models/base)"; exit 1; }
OUT=benchmarks/results
start=$(date +%s)
"$PY" benchmarks/train_step.py --model embedded --lora --device cuda --repeats 5 --out "$OUT/train_step_cuda.json"
"$PY" benchmarks/effects.py --model embedded --device cuda --repeats 5 --rows 64 --out "$OUT/effects_cuda.json"
"$PY" benchmarks/generation.py --model embedded --device cuda --repeats 3 --prompts 32 --prefill \
  --out "$OUT/generation_cuda.json"
echo "benchmarks/gpu.sh: done in $(( $(date +%s) - start )) s; results in $OUT/*_cuda.json"
