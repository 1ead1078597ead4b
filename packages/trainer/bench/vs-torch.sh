#!/bin/bash
# cllama native against PyTorch, back to back in one window (run from the repository root; PyTorch 2.x
# in $PYTHON, default python3; 2 threads each; the best step of each run):
#   packages/trainer/bench/vs-torch.sh bench [rounds] [extra train.ts flags]
#   packages/trainer/bench/vs-torch.sh smollm|tinyllama lora|stage2|sft 0|1(checkpointing) [rounds] [extra lora-step.ts flags]
# Each round prints the load average before and after, the two timings and their ratio.
set -euo pipefail
PY=${PYTHON:-python3}
B=packages/trainer/bench
load() { cut -d' ' -f1 /proc/loadavg; }
if [ "$1" = bench ]; then
  rounds=${2:-1}; shift; shift || true
  for _ in $(seq "$rounds"); do
    l1=$(load)
    t=$($PY $B/train_torch.py 3 2 | grep RESULT | $PY -c "
import sys, json
for l in sys.stdin:
    r = json.loads(l[7:]); print(r['mode'], 1024 / min(r['stepSeconds'][1:]))")
    o=$(node --import tsx $B/train.ts --backend native --threads 1 --steps 3 --no-profile "$@" | grep 'threads 1' | $PY -c "
import sys, re
for l in sys.stdin:
    s = [float(x) for x in re.search(r'step seconds: ([^)]*)', l).group(1).split(', ')][1:]; print(l.split()[0], 1024 / min(s))")
    $PY -c "
import sys
t = dict(l.split() for l in sys.argv[1].splitlines()); o = dict(l.split() for l in sys.argv[2].splitlines())
print(f'load {sys.argv[3]}->{sys.argv[4]}: ' + '  '.join(f'{m} {float(o[m]):.0f} vs torch {float(t[m]):.0f} tok/s = {float(o[m]) / float(t[m]):.2f}x' for m in o if m in t))" "$t" "$o" "$l1" "$(load)"
  done
  exit 0
fi
shape=$1; settings=$2; ckpt=$3; rounds=${4:-1}; shift 4 || shift $#
steps=$([ "$shape" = tinyllama ] && echo 2 || echo 3)
oflag=(); tflag=(); if [ "$ckpt" = 1 ]; then oflag=(--checkpointing); tflag=(--ckpt); fi
for _ in $(seq "$rounds"); do
  l1=$(load)
  t=$($PY $B/lora_step_torch.py "$shape" 512 "$steps" 2 "${tflag[@]}" --settings="$settings" | tail -1)
  o=$(node --import tsx $B/lora-step.ts --shape "$shape" --settings "$settings" --steps "$steps" "${oflag[@]}" "$@" | tail -1)
  $PY -c "
import sys, re
def best(s): xs = [float(x) for x in re.search(r'step seconds ([\d., ]+);', s).group(1).split(', ')]; return min(xs[1:] or xs)
def rss(s): return float(re.search(r'peak RSS ([\d.]+) GB', s).group(1))
t, o = sys.argv[1], sys.argv[2]
print(f'{sys.argv[5]} load {sys.argv[3]}->{sys.argv[4]}: cllama {best(o):.2f} s {rss(o):.2f} GB, torch {best(t):.2f} s {rss(t):.2f} GB: speed {best(t) / best(o):.2f}x, memory {rss(o) / rss(t):.2f}x')" "$t" "$o" "$l1" "$(load)" "$shape $settings checkpointing=$ckpt"
done
