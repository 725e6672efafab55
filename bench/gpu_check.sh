#!/usr/bin/env bash
# Every GPU figure of the accelerator issue, on one CUDA machine, in under 8 minutes.
#
#   bash bench/gpu_check.sh            # python3 with torch + CUDA, transformers, peft, captum, h5py
#   PY=.venv/bin/python bash bench/gpu_check.sh
#
# Prints, in order: (1) default recipe vs the study's recipe on the demo fish (time-to-accuracy,
# their ratio, test RMSE, step MFU against a bf16 matmul); (2) the DeepSeek-Coder-6.7B
# architecture, random init, LoRA: time until the model is on the GPU and step MFU at batch 8 and
# 32; (3) the same backbone fine-tuned on the demo fish for 60 s (test RMSE vs the mean predictor
# is in the line `evaluate` prints); (4) IG, 32 steps, one epoch and the whole test split.
# Each part has its own time limit so one slow part cannot eat the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
part() { echo; echo "== $1 ($(date +%T))"; }

part "0. device"
$PY -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))' || exit 1
$PY -m decoding demo-data --out data/demo --if-missing || exit 1

part "1. default recipe vs the study's recipe, demo fish"
timeout 150 $PY bench/bench_training.py --device cuda --study-epochs 10 --json "$OUT/training.json"

part "2. DeepSeek-Coder-6.7B architecture, random init, LoRA: ready time, step MFU"
for b in 8 32; do
  timeout 90 $PY bench/bench_training.py --device cuda --backbone deepseek-coder --init random \
    --mode lora --skip-tta --recipes ours --mfu-batch "$b"
done

part "3. DeepSeek-Coder-6.7B architecture, LoRA, 60 s on the demo fish"
timeout 150 $PY -m decoding train --recording data/demo/demo_fish.h5 --backbone deepseek-coder \
  --init random --mode lora --batch-size 32 --max-time 60 --device cuda --quiet --out "$OUT/ds67"
timeout 60 $PY -m decoding evaluate --checkpoint "$OUT/ds67" --recording data/demo/demo_fish.h5

part "4. IG (32 steps): one epoch and the whole test split, default decoder"
timeout 90 $PY bench/bench_salience.py --sections demo --device cuda
echo; echo "== done ($(date +%T))"
