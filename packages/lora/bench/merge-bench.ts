/**
 * Merge throughput and peak memory on a synthetic LLaMA folder big enough that holding it twice would
 * show in the peak RSS. Run by hand: `npx tsx packages/lora/bench/merge-bench.ts [hidden] [layers] [vocab]`
 * (default hidden 1024, 4 layers, vocab 32000: 116 M parameters, 465 MB as F32).
 * Writes the base, a PEFT adapter (r=8 on all seven projections + modules_to_save embed/lm_head with a
 * larger vocabulary) and the merged output under the OS temp folder, prints the figures, deletes it all.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '@cllama/core';
import { createLlamaConfig, peftFullKey, peftLoraKeys, saveHFCheckpoint, writePeftAdapter } from '../src/index.js';
import { llamaWeightSpecs } from '../src/llama-weights.js';

const hidden = Number(process.argv[2] ?? 1024);
const layers = Number(process.argv[3] ?? 4);
const vocab = Number(process.argv[4] ?? 32000);
const newVocab = vocab + 17953; // the Chinese-LLaMA growth 32,000 → 49,953
const random = mulberry32(1);
const fill = (n: number, scale: number) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (random() * 2 - 1) * scale;
  return a;
};

const config = createLlamaConfig({
  hiddenSize: hidden,
  intermediateSize: Math.round((hidden * 8) / 3 / 64) * 64,
  numHiddenLayers: layers,
  numAttentionHeads: hidden / 64,
  vocabSize: vocab,
});
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lora-bench-'));
try {
  const specs = llamaWeightSpecs(config);
  const params = specs.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
  const t = Date.now();
  await saveHFCheckpoint(
    path.join(root, 'base'),
    config,
    (function* () {
      for (const w of specs)
        yield {
          name: w.name,
          shape: w.shape,
          data: fill(
            w.shape.reduce((a, b) => a * b, 1),
            0.02,
          ),
        };
    })(),
    { maxShardBytes: 200e6 },
  );
  console.log(`base: ${(params / 1e6).toFixed(1)} M params, ${((params * 4) / 1e6).toFixed(0)} MB F32, written in ${((Date.now() - t) / 1000).toFixed(1)} s`);

  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const w of specs) {
    if (!w.linear || w.name === 'lm_head.weight') continue;
    const [out, inF] = w.shape;
    const k = peftLoraKeys(w.name);
    tensors.set(k.a, { shape: [8, inF], data: fill(8 * inF, 0.05) });
    tensors.set(k.b, { shape: [out, 8], data: fill(out * 8, 0.05) });
  }
  tensors.set(peftFullKey('model.embed_tokens.weight'), { shape: [newVocab, hidden], data: fill(newVocab * hidden, 0.02) });
  tensors.set(peftFullKey('lm_head.weight'), { shape: [newVocab, hidden], data: fill(newVocab * hidden, 0.02) });
  await writePeftAdapter(
    path.join(root, 'adapter'),
    {
      r: 8,
      loraAlpha: 32,
      loraDropout: 0.05,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'down_proj', 'up_proj'],
      modulesToSave: ['embed_tokens', 'lm_head'],
      bias: 'none',
      fanInFanOut: false,
    },
    tensors,
  );
  tensors.clear();

  // The merge runs in a fresh process (the built library) so its peak RSS is its own.
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js');
  const script = `import { mergeAdaptersIntoCheckpoint } from ${JSON.stringify(dist)};
    const t = Date.now();
    await mergeAdaptersIntoCheckpoint({ baseDir: ${JSON.stringify(path.join(root, 'base'))}, adapterDirs: [${JSON.stringify(path.join(root, 'adapter'))}],
      outDir: ${JSON.stringify(path.join(root, 'merged'))}, maxShardBytes: 200e6 });
    console.log(JSON.stringify({ seconds: (Date.now() - t) / 1000, maxRssKb: process.resourceUsage().maxRSS }));`;
  const result = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim().split('\n').pop()!);
  const files = (await fs.readdir(path.join(root, 'merged'))).length;
  const mergedParams = params + 2 * (newVocab - vocab) * hidden;
  console.log(`merge (F32 out, ${files} files): ${result.seconds.toFixed(1)} s, ${((mergedParams * 4) / 1e6 / result.seconds).toFixed(0)} MB/s of output`);
  console.log(
    `merge process peak RSS ${(result.maxRssKb / 1e3).toFixed(0)} MB; merged model ${((mergedParams * 4) / 1e6).toFixed(0)} MB; largest single tensor ${((newVocab * hidden * 4) / 1e6).toFixed(0)} MB`,
  );
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
