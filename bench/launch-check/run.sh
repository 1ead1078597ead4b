#!/usr/bin/env bash
# GPU-side check of `cllama-train … --emit-launch` (see README.md here). Needs python3 with torch (CUDA),
# transformers, peft, accelerate, safetensors, numpy, sentencepiece; no DeepSpeed, no network; and
# bench/launch-check/upload/ built by prepare.ts on the CPU machine (carried with the working tree).
#   bash bench/launch-check/run.sh          # results under $OUT (or bench/launch-check/out)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UP="$HERE/upload"
OUT="${OUT:-$HERE/out}"
mkdir -p "$OUT"
if [ ! -f "$UP/expected.json" ]; then
  echo "run.sh: $UP/expected.json is missing; build the upload with 'npx tsx bench/launch-check/prepare.ts' and carry bench/launch-check/upload" >&2
  exit 1
fi
python3 - <<'PY' | tee "$OUT/versions.txt"
import sys, torch, transformers, peft, accelerate, safetensors, numpy
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("transformers", transformers.__version__, "| peft", peft.__version__, "| accelerate", accelerate.__version__, "| safetensors", safetensors.__version__, "| numpy", numpy.__version__)
try:
    import deepspeed; print("deepspeed", deepspeed.__version__)
except Exception as e:
    print("deepspeed: not importable (train.py should say it falls back to DDP):", type(e).__name__)
PY
rm -rf "$OUT/stage2" "$OUT/sft"
export NPROC_PER_NODE=1 MODEL_PATH="$UP/stage1" PRECISION="${PRECISION:-bf16}" MASTER_PORT="${MASTER_PORT:-29531}"
t0=$(date +%s)
# stage 2 from scratch (LoRA + embed_tokens/lm_head), then SFT continuing the adapter stage 2 just wrote
OUTPUT_DIR="$OUT/stage2" PEFT_PATH="" bash "$UP/stage2-launch/launch.sh" --disable_tqdm true 2>&1 | tee "$OUT/stage2.log"
t1=$(date +%s)
OUTPUT_DIR="$OUT/sft" PEFT_PATH="$OUT/stage2" bash "$UP/sft-launch/launch.sh" --disable_tqdm true 2>&1 | tee "$OUT/sft.log"
t2=$(date +%s)
echo "wall seconds: stage2 $((t1 - t0)), sft $((t2 - t1)) (torchrun --nproc_per_node 1, precision $PRECISION)" | tee "$OUT/wall.txt"
status=0
python3 "$HERE/check.py" --upload "$UP" --out "$OUT" 2>&1 | tee "$OUT/check.log" || status=$?
# what comes back stays small: check.py has listed the checkpoints; their optimizer states are not needed here
rm -rf "$OUT"/stage2/checkpoint-* "$OUT"/sft/checkpoint-*
exit "$status"
