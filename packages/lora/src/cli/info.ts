/** `cllama-lora info`: what a PEFT LoRA adapter holds (targets, r, alpha, parameter counts), as text or one JSON object. */
import * as path from 'node:path';
import { defineCommand } from '@cllama/core';
import { readLlamaConfig } from '../llama-config.js';
import { PeftAdapter, loraTargets } from '../peft.js';
import { countTrainableParameters } from '../trainable-params.js';

interface AdapterCounts {
  modules: string[];
  saved: Record<string, number[]>;
  loraParameters: number;
  savedParameters: number;
}

function countAdapter(adapter: PeftAdapter): AdapterCounts {
  let loraParameters = 0;
  for (const p of adapter.loraPairs.values()) loraParameters += p.aShape[0] * p.aShape[1] + p.bShape[0] * p.bShape[1];
  let savedParameters = 0;
  const saved: Record<string, number[]> = {};
  for (const [weight, key] of adapter.fullTensors) {
    const shape = adapter.file.info(key).shape;
    saved[weight] = shape;
    savedParameters += shape.reduce((a, b) => a * b, 1);
  }
  const modules = [...new Set([...adapter.loraPairs.keys()].map((w) => w.replace(/^.*\.([^.]+)\.weight$/, '$1')))].sort();
  return { modules, saved, loraParameters, savedParameters };
}

/** The trainable share of the adapter's training on `baseDir` (only its config.json is read). */
async function trainableShare(adapter: PeftAdapter, saved: Record<string, number[]>, baseDir: string) {
  const c = adapter.config;
  const base = await readLlamaConfig(baseDir);
  // The adapter's saved vocabulary (if any) is the model it trains.
  const embedRows = saved['model.embed_tokens.weight']?.[0] ?? saved['lm_head.weight']?.[0];
  // on a tied base, PEFT trains a saved embed_tokens / lm_head as its own copy: count the model untied
  const apart = base.tieWordEmbeddings && (saved['model.embed_tokens.weight'] !== undefined || saved['lm_head.weight'] !== undefined);
  const model = { ...base, ...(embedRows ? { vocabSize: embedRows } : {}), ...(apart ? { tieWordEmbeddings: false } : {}) };
  const count = countTrainableParameters(model, { lora: { r: c.r, targetModules: loraTargets(c) }, modulesToSave: c.modulesToSave });
  return { trainable: count.trainable, total: count.total, percent: Number(count.percent.toFixed(4)), vocabSize: model.vocabSize };
}

function formatInfo(adapter: PeftAdapter, dir: string, counts: AdapterCounts, trainable?: { trainable: number; total: number; percent: number }): string {
  const c = adapter.config;
  const fmt = (n: number) => n.toLocaleString('en-US');
  const lines = [
    `adapter          ${path.resolve(dir)}`,
    `r / alpha        ${c.r} / ${c.loraAlpha}  (scaling ${adapter.scaling})`,
    `dropout          ${c.loraDropout}`,
    `target_modules   ${JSON.stringify(loraTargets(c))}`,
    `adapted          ${counts.modules.join(', ') || '(none)'} — ${adapter.loraPairs.size} LoRA pairs`,
    ...(adapter.ignoredPairs.length > 0 ? [`ignored          ${adapter.ignoredPairs.length} LoRA pairs outside target_modules (as PEFT)`] : []),
    `modules_to_save  ${
      Object.entries(counts.saved)
        .map(([n, s]) => `${n} [${s.join(', ')}]`)
        .join(', ') || '(none)'
    }`,
    `parameters       ${fmt(counts.loraParameters)} LoRA + ${fmt(counts.savedParameters)} saved = ${fmt(counts.loraParameters + counts.savedParameters)}`,
  ];
  if (trainable) lines.push(`trainable share  ${fmt(trainable.trainable)} of ${fmt(trainable.total)} = ${trainable.percent.toFixed(2)}%`);
  return lines.join('\n');
}

export const infoCommand = defineCommand<{ adapterDir: string; base?: string; json?: boolean }>({
  meta: {
    name: 'info',
    description: 'describe a PEFT LoRA adapter: targets, r, alpha, parameter counts',
    example: 'cllama-lora info sft_lora --base llama-7b-hf',
  },
  args: {
    'adapter-dir': { type: 'positional', description: 'adapter folder (adapter_config.json + adapter_model.safetensors)' },
    base: { type: 'string', valueHint: 'dir', description: 'base model folder (only its config.json is read) to report the trainable share' },
    json: { type: 'boolean', description: 'print one JSON object' },
  },
  run: async ({ args: { adapterDir: dir, base, json } }) => {
    const adapter = await PeftAdapter.open(dir);
    try {
      const c = adapter.config;
      const counts = countAdapter(adapter);
      const info: Record<string, unknown> = {
        adapter: path.resolve(dir),
        r: c.r,
        loraAlpha: c.loraAlpha,
        scaling: adapter.scaling,
        loraDropout: c.loraDropout,
        targetModules: loraTargets(c),
        adaptedModules: counts.modules,
        loraPairs: adapter.loraPairs.size,
        ignoredLoraPairs: adapter.ignoredPairs,
        modulesToSave: c.modulesToSave,
        savedTensors: counts.saved,
        loraParameters: counts.loraParameters,
        savedParameters: counts.savedParameters,
        adapterParameters: counts.loraParameters + counts.savedParameters,
        storedDtypes: [...new Set(adapter.file.names().map((n) => adapter.file.info(n).dtype))],
        baseModelNameOrPath: c.baseModelNameOrPath ?? null,
      };
      const trainable = base ? await trainableShare(adapter, counts.saved, base) : undefined;
      if (trainable) info.trainable = trainable;
      const warning = adapter.ignoredPairsWarning();
      if (warning) process.stderr.write(`warning: ${warning}\n`);
      console.log(json ? JSON.stringify(info, null, 2) : formatInfo(adapter, dir, counts, trainable));
    } finally {
      await adapter.close();
    }
  },
});
