#!/usr/bin/env bash
# Runs the GPU kit on the GPU machine (no Node, no network needed): unpacks Node and Dawn, finds a
# Vulkan driver, then
#   1. adapter info   2. parity on the real GPU   3. training bench, bench config and the larger one
#   4. the PyTorch anchor on the same GPU (float32 with TF32 off, then on)   5. one LoRA step of a
#   7B-shaped model with as many layers as the time budget allows (per-layer time, peak memory)
#   6. one decoder layer's forward + backward on onnxruntime's own WebGPU EP and its CPU EP (SmolLM-135M
#   and TinyLlama-1.1B shapes): node placement, ms per layer, webgpu vs cpu parity
# Everything is printed and kept in results/ (one log per part; RESULT lines are JSON).
#
#   bash run.sh            the real measurement (~8 minutes on an H100/H200-class GPU)
#   bash run.sh --smoke    tiny sizes: checks the kit on any machine with a (software) adapter
#   PYTHON=/path/to/python3 bash run.sh     the Python that has torch (default: python3)
set -uo pipefail
PYTHON=${PYTHON:-python3}
KIT=$(cd "$(dirname "$0")" && pwd)
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
RESULTS="$KIT/results"
mkdir -p "$RESULTS"
say() { echo "== $*" | tee -a "$RESULTS/summary.log"; }

# ---------------------------------------------------------------- unpack (once)
unpack() { # file.gz → file, with gzip or, failing that, python3 (again when the .gz is newer: a kit copied over an older one)
  [ -f "$2" ] && [ "$2" -nt "$1" ] && return 0
  if command -v gzip >/dev/null; then gzip -dc "$1" > "$2.tmp"; else python3 -c 'import gzip,shutil,sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2.tmp"; fi
  mv "$2.tmp" "$2"
}
unpack "$KIT/node.gz" "$KIT/node" && chmod +x "$KIT/node"
unpack "$KIT/kit.mjs.gz" "$KIT/kit.mjs"
unpack "$KIT/node_modules/webgpu/dist/linux-x64/dawn.node.gz" "$KIT/node_modules/webgpu/dist/linux-x64/dawn.node"
ORT_BIN="$KIT/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
unpack "$ORT_BIN/libonnxruntime.so.1.gz" "$ORT_BIN/libonnxruntime.so.1"
NODE="$KIT/node"
"$NODE" --version >/dev/null || { echo "run.sh: the bundled Node does not start on this machine (glibc too old?)" >&2; exit 1; }

# ---------------------------------------------------------------- Vulkan loader and driver
LDCACHE=$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)
if ! grep -q 'libvulkan.so.1' <<< "$LDCACHE"; then
  export LD_LIBRARY_PATH="$KIT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "Vulkan loader: the kit's lib/libvulkan.so.1 (none installed)"
fi
ICDS=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | tr '\n' ' ')
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! grep -q nvidia <<< "$ICDS" && grep -q 'libGLX_nvidia.so.0' <<< "$LDCACHE"; then
  # NVIDIA's driver without its ICD file (common in containers): point the loader at the driver library
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3"}}\n' > "$KIT/nvidia_icd.json"
  export VK_ICD_FILENAMES="$KIT/nvidia_icd.json"
  say "Vulkan ICD: $KIT/nvidia_icd.json → libGLX_nvidia.so.0 (no nvidia_icd.json installed)"
fi
say "Vulkan ICD files: ${VK_ICD_FILENAMES:-$ICDS}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$RESULTS/summary.log"

# runs one part with a time limit, logging to results/<name>.log; a failed part does not stop the others
part() {
  local name=$1 limit=$2; shift 2
  say "$name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log" | grep -v '^RESULT ' | grep -v '^Warning: maxDynamic'
  local rc=${PIPESTATUS[0]}
  say "$name: exit $rc, $((SECONDS - t0)) s"
  grep -h '^RESULT ' "$RESULTS/$name.log" >> "$RESULTS/results.jsonl" || true
}

# GPU memory in use, sampled every 0.5 s while the kit runs (the peak is what a run needs)
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 500 > "$RESULTS/gpu-memory.csv" 2>/dev/null &
  SAMPLER=$!
  trap 'kill $SAMPLER 2>/dev/null' EXIT
fi

: > "$RESULTS/results.jsonl"
TORCH_OK=0
"$PYTHON" -c 'import torch' 2>/dev/null && TORCH_OK=1
if [ "$SMOKE" = 1 ]; then
  part info 60 "$NODE" "$KIT/kit.mjs" info
  part parity 300 "$NODE" "$KIT/kit.mjs" parity --fixtures "$KIT/fixtures"
  part bench-smoke 300 "$NODE" "$KIT/kit.mjs" bench --config smoke --steps 2
  DEVICE=cpu; "$PYTHON" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && DEVICE=cuda
  if [ "$TORCH_OK" = 1 ]; then part torch-smoke 300 "$PYTHON" "$KIT/train_torch.py" 1 --device "$DEVICE" --config smoke --modes stage2,full; else say "torch-smoke: skipped ($PYTHON has no torch; set PYTHON=)"; fi
  part lora7b-smoke 300 "$NODE" "$KIT/kit.mjs" lora7b --shape smoke --layers 1,2 --budget-s 120
  part ortgpu-smoke 120 "$NODE" "$KIT/kit.mjs" ortgpu --shape smoke --iters 3 --cpu-iters 2
else
  part info 60 "$NODE" "$KIT/kit.mjs" info
  part parity 90 "$NODE" "$KIT/kit.mjs" parity --fixtures "$KIT/fixtures"
  part bench 75 "$NODE" "$KIT/kit.mjs" bench --config bench --steps 5
  part bench-large 100 "$NODE" "$KIT/kit.mjs" bench --config large --steps 3
  if [ "$TORCH_OK" = 1 ]; then
    part torch-bench-fp32 45 "$PYTHON" "$KIT/train_torch.py" 5 --device cuda --config bench --tf32 off --modes stage2,full
    part torch-large-fp32 45 "$PYTHON" "$KIT/train_torch.py" 3 --device cuda --config large --tf32 off --modes stage2,full
    part torch-large-tf32 45 "$PYTHON" "$KIT/train_torch.py" 3 --device cuda --config large --tf32 on --modes stage2,full
  else
    say "torch: skipped ($PYTHON has no torch; set PYTHON=)"
  fi
  part lora7b 190 "$NODE" "$KIT/kit.mjs" lora7b --layers 1,2,4,8,16,32 --budget-s 150
  part ortgpu 120 "$NODE" "$KIT/kit.mjs" ortgpu --shape smollm,tinyllama --iters 10 --cpu-iters 3
fi
[ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null && say "peak GPU memory in use during the run: $(sort -t, -k2 -n "$RESULTS/gpu-memory.csv" | tail -1 | cut -d, -f2) MiB (nvidia-smi)"

# ---------------------------------------------------------------- summary: tokens/s and the ratios
python3 - "$RESULTS/results.jsonl" <<'PY' | tee -a "$RESULTS/summary.log"
import json, sys
rows = [json.loads(l[len("RESULT "):]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
ours = {(r["config"], r["mode"]): r["tokensPerSecond"] for r in rows if r["command"] == "bench"}
torch = {(r["config"], r["mode"], r["tf32"]): r["tokensPerSecond"] for r in rows if r["command"] == "torch"}
for r in rows:
    if r["command"] == "parity":
        print(f"parity {r['fixture']}: {'PASS' if r['pass'] else 'FAIL'} (loss {r['lossAbs']:.1e} abs, worst grad norm {r['worstGradNormRel']:.1e} rel)")
for (config, mode), tps in sorted(ours.items()):
    line = f"{config:6s} {mode:7s} webgpu {tps:9.0f} tok/s"
    for tf32 in ("off", "on"):
        t = torch.get((config, mode, tf32))
        if t:
            line += f" | torch fp32{'+TF32' if tf32 == 'on' else ''} {t:9.0f} tok/s, ratio {tps / t:.2f}x"
    print(line)
for r in rows:
    if r["command"] == "lora7b-summary":
        print(f"LoRA step, {r['shape']}-shaped: {r['perLayerSeconds']:.3f} s and {r['perLayerBytes'] / 2**30:.2f} GiB per layer; 32 layers ≈ {r['estimated32LayerStepSeconds']:.2f} s")
for r in rows:
    if r["command"] == "ortgpu-placement" and "nodes" in r:
        cpu = ", ".join(f"{n} {op}" for op, n in r["cpuOps"].items())
        print(f"ORT webgpu placement, {r['shape']} {r['graph']} graph {r['direction']}: " + ", ".join(f"{n} on {ep}" for ep, n in r["nodes"].items()) + (f" (on the CPU: {cpu})" if cpu else ""))
ort_ms = {(r["shape"], r["route"]): r for r in rows if r["command"] == "ortgpu" and "msPerLayer" in r}
for r in rows:
    if r["command"] == "ortgpu-parity":
        w, c = ort_ms.get((r["shape"], "webgpu")), ort_ms.get((r["shape"], "cpu"))
        partial = "" if w and w.get("allOnGpu") else " (PARTIAL: some nodes on the CPU)"
        times = f"webgpu {w['msPerLayer']:.1f} ms, cpu {c['msPerLayer']:.1f} ms per layer fwd+bwd, webgpu speed vs cpu {c['msPerLayer'] / w['msPerLayer']:.2f}x{partial}" if w and c else ""
        print(f"ORT layer {r['shape']}: {times}; parity {'PASS' if r['pass'] else 'FAIL'} (max rel err {r['maxRelErr']:.1e}, {r['worst']})")
    if r["command"] == "ortgpu" and "error" in r:
        print(f"ORT layer {r['shape']} {r['route']}: FAILED: {r['error']}")
PY
say "results in $RESULTS (summary.log, results.jsonl, one log per part)"
