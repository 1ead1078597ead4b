/** `cllama-lora merge`: one or more PEFT LoRA adapters, in order, into a base HF folder, written atomically. */
import * as path from 'node:path';
import { defineCommand, UsageError } from '@cllama/core';
import { mergeAdaptersIntoCheckpoint } from '../merge.js';
import type { SaveDtype } from '../safetensors.js';

function parseSaveDtype(value: string): SaveDtype {
  const v = value.toLowerCase();
  if (v === 'f32' || v === 'float32') return 'F32';
  if (v === 'f16' || v === 'float16') return 'F16';
  throw new UsageError(`--save-dtype must be f32 or f16, got '${value}'`);
}

/** "5GB", "500MB", "2GiB", or a plain byte count. */
function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(value.trim());
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
  const bytes = m ? Math.floor(Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]) : Number.NaN;
  if (!(bytes > 0)) throw new UsageError(`--max-shard-size must be a positive size such as 5GB, 500MB or 1000000, got '${value}'`);
  return bytes;
}

interface MergeFlags {
  base: string;
  lora: string;
  out: string;
  tokenizer?: string;
  saveDtype: SaveDtype;
  maxShardSize?: number;
  force?: boolean;
  overwrite?: boolean;
  progress: boolean;
  quiet?: boolean;
}

export const mergeCommand = defineCommand<MergeFlags>({
  meta: {
    name: 'merge',
    description: 'merge one or more LoRA adapters, in order, into a base model; writes a new HF folder atomically',
    example: 'cllama-lora merge --base llama-7b-hf --lora pt_lora,sft_lora --tokenizer sft_lora --out chinese-alpaca-7b',
  },
  args: {
    base: { type: 'string', valueHint: 'dir', description: 'base HF model folder (config.json + model.safetensors or shards)', required: true },
    lora: { type: 'string', valueHint: 'dirs', description: 'adapter folder(s), comma-separated, applied in this order', required: true },
    out: { type: 'string', valueHint: 'dir', description: 'output folder (must not exist or be empty, unless --force)', required: true },
    tokenizer: { type: 'string', valueHint: 'dir', description: 'tokenizer folder to copy into the output (default: the last adapter folder, else the base)' },
    'save-dtype': { type: 'string', valueHint: 'dtype', description: 'f32 or f16', parse: parseSaveDtype, default: 'F32' },
    'max-shard-size': { type: 'string', valueHint: 'size', description: 'largest shard, e.g. 2GB (default 5GB, like transformers)', parse: parseSize },
    force: { type: 'boolean', description: 'replace a non-empty --out folder' },
    overwrite: { type: 'boolean', description: 'old name of --force', hidden: true },
    'no-progress': { type: 'boolean', description: 'no progress lines' },
    quiet: { type: 'boolean', description: 'no progress lines and no warnings: only errors on stderr' },
  },
  run: async ({ args: o }) => {
    const adapterDirs = o.lora
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const started = Date.now();
    const report = await mergeAdaptersIntoCheckpoint({
      baseDir: o.base,
      adapterDirs,
      outDir: o.out,
      tokenizerDir: o.tokenizer,
      dtype: o.saveDtype,
      maxShardBytes: o.maxShardSize,
      force: o.force || o.overwrite,
      onProgress: o.quiet || !o.progress ? undefined : (m) => process.stderr.write(`${m}\n`),
      onWarning: o.quiet ? undefined : (m) => process.stderr.write(`warning: ${m}\n`),
    });
    console.log(
      `merged ${adapterDirs.length} adapter(s) into ${path.resolve(o.out)}: ${report.tensors} tensors, ` +
        `${report.loraMerged} LoRA merges, ${report.replaced} saved modules, vocab ${report.vocabSize}, ` +
        `${o.saveDtype}, tokenizer ${report.tokenizerFrom ? `from ${report.tokenizerFrom}` : 'not copied'} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  },
});
