/**
 * cllama-lora: merge PEFT LoRA adapters into an HF LLaMA folder, and describe an adapter.
 * On error: one line on stderr, exit code 1 (2 for usage errors), through @cllama/core's runMain.
 */
import * as path from 'node:path';
import { runMain } from '@cllama/core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { HFCheckpoint } from './hf-checkpoint.js';
import { readLlamaConfig } from './llama-config.js';
import { mergeAdaptersIntoCheckpoint } from './merge.js';
import { PeftAdapter, loraTargets } from './peft.js';
import { SafetensorsFile, type SaveDtype } from './safetensors.js';
import { countTrainableParameters } from './trainable-params.js';

function parseSaveDtype(value: string): SaveDtype {
  const v = value.toLowerCase();
  if (v === 'f32' || v === 'float32') return 'F32';
  if (v === 'f16' || v === 'float16') return 'F16';
  throw new InvalidArgumentError('use f32 or f16');
}

/** "5GB", "500MB", "2GiB", or a plain byte count. */
function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('use a size such as 5GB, 500MB or 1000000');
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
  const bytes = Math.floor(Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]);
  if (bytes <= 0) throw new InvalidArgumentError('must be positive');
  return bytes;
}

const program = new Command();
program.name('cllama-lora').description('Merge PEFT LoRA adapters into Hugging Face LLaMA folders (safetensors), and inspect adapters.');

program
  .command('merge')
  .description('merge one or more LoRA adapters, in order, into a base model; writes a new HF folder atomically')
  .requiredOption('--base <dir>', 'base HF model folder (config.json + model.safetensors or shards)')
  .requiredOption('--lora <dirs>', 'adapter folder(s), comma-separated, applied in this order')
  .requiredOption('--out <dir>', 'output folder (must not exist or be empty, unless --force)')
  .option('--tokenizer <dir>', 'tokenizer folder to copy into the output (default: the last adapter folder, else the base)')
  .option('--save-dtype <dtype>', 'f32 or f16', parseSaveDtype, 'F32' as SaveDtype)
  .option('--max-shard-size <size>', 'largest shard, e.g. 2GB (default 5GB, like transformers)', parseSize)
  .option('--force', 'replace a non-empty --out folder')
  .addOption(new Option('--overwrite', 'old name of --force').hideHelp())
  .option('--quiet', 'no progress lines')
  .action(
    async (opts: {
      base: string;
      lora: string;
      out: string;
      tokenizer?: string;
      saveDtype: SaveDtype;
      maxShardSize?: number;
      force?: boolean;
      overwrite?: boolean;
      quiet?: boolean;
    }) => {
      const adapterDirs = opts.lora
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const started = Date.now();
      const report = await mergeAdaptersIntoCheckpoint({
        baseDir: opts.base,
        adapterDirs,
        outDir: opts.out,
        tokenizerDir: opts.tokenizer,
        dtype: opts.saveDtype,
        maxShardBytes: opts.maxShardSize,
        force: opts.force || opts.overwrite,
        onProgress: opts.quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
        onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
      });
      console.log(
        `merged ${adapterDirs.length} adapter(s) into ${path.resolve(opts.out)}: ${report.tensors} tensors, ` +
          `${report.loraMerged} LoRA merges, ${report.replaced} saved modules, vocab ${report.vocabSize}, ` +
          `${opts.saveDtype}, tokenizer ${report.tokenizerFrom ? `from ${report.tokenizerFrom}` : 'not copied'} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    },
  );

program
  .command('info')
  .description('describe a PEFT LoRA adapter: targets, r, alpha, parameter counts')
  .argument('<adapter-dir>', 'adapter folder (adapter_config.json + adapter_model.safetensors)')
  .option('--base <dir>', 'base model folder (only its config.json is read) to report the trainable share')
  .option('--json', 'print JSON')
  .action(async (dir: string, opts: { base?: string; json?: boolean }) => {
    const adapter = await PeftAdapter.open(dir);
    try {
      const c = adapter.config;
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
      const info: Record<string, unknown> = {
        adapter: path.resolve(dir),
        r: c.r,
        loraAlpha: c.loraAlpha,
        scaling: adapter.scaling,
        loraDropout: c.loraDropout,
        targetModules: loraTargets(c),
        adaptedModules: modules,
        loraPairs: adapter.loraPairs.size,
        ignoredLoraPairs: adapter.ignoredPairs,
        modulesToSave: c.modulesToSave,
        savedTensors: saved,
        loraParameters,
        savedParameters,
        adapterParameters: loraParameters + savedParameters,
        storedDtypes: [...new Set(adapter.file.names().map((n) => adapter.file.info(n).dtype))],
        baseModelNameOrPath: c.baseModelNameOrPath ?? null,
      };
      if (opts.base) {
        const base = await readLlamaConfig(opts.base);
        // The adapter's saved vocabulary (if any) is the model it trains.
        const embedRows = saved['model.embed_tokens.weight']?.[0] ?? saved['lm_head.weight']?.[0];
        // on a tied base, PEFT trains a saved embed_tokens / lm_head as its own copy: count the model untied
        const apart = base.tieWordEmbeddings && (saved['model.embed_tokens.weight'] !== undefined || saved['lm_head.weight'] !== undefined);
        const model = { ...base, ...(embedRows ? { vocabSize: embedRows } : {}), ...(apart ? { tieWordEmbeddings: false } : {}) };
        const count = countTrainableParameters(model, { lora: { r: c.r, targetModules: loraTargets(c) }, modulesToSave: c.modulesToSave });
        info.trainable = { trainable: count.trainable, total: count.total, percent: Number(count.percent.toFixed(4)), vocabSize: model.vocabSize };
      }
      const warning = adapter.ignoredPairsWarning();
      if (warning) process.stderr.write(`warning: ${warning}\n`);
      if (opts.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      const fmt = (n: number) => n.toLocaleString('en-US');
      const lines = [
        `adapter          ${info.adapter}`,
        `r / alpha        ${c.r} / ${c.loraAlpha}  (scaling ${adapter.scaling})`,
        `dropout          ${c.loraDropout}`,
        `target_modules   ${JSON.stringify(loraTargets(c))}`,
        `adapted          ${modules.join(', ') || '(none)'} — ${adapter.loraPairs.size} LoRA pairs`,
        ...(adapter.ignoredPairs.length > 0 ? [`ignored          ${adapter.ignoredPairs.length} LoRA pairs outside target_modules (as PEFT)`] : []),
        `modules_to_save  ${
          Object.entries(saved)
            .map(([n, s]) => `${n} [${s.join(', ')}]`)
            .join(', ') || '(none)'
        }`,
        `parameters       ${fmt(loraParameters)} LoRA + ${fmt(savedParameters)} saved = ${fmt(loraParameters + savedParameters)}`,
      ];
      if (info.trainable) {
        const t = info.trainable as { trainable: number; total: number; percent: number };
        lines.push(`trainable share  ${fmt(t.trainable)} of ${fmt(t.total)} = ${t.percent.toFixed(2)}%`);
      }
      console.log(lines.join('\n'));
    } finally {
      await adapter.close();
    }
  });

program
  .command('tensors')
  .description('list the tensors of a .safetensors file or HF model folder (name, dtype, shape)')
  .argument('<path>', 'file or folder')
  .action(async (target: string) => {
    if (target.endsWith('.safetensors')) {
      const f = await SafetensorsFile.open(target);
      for (const n of f.names()) console.log(`${n}\t${f.info(n).dtype}\t[${f.info(n).shape.join(', ')}]`);
      await f.close();
      return;
    }
    const ckpt = await HFCheckpoint.open(target);
    for (const n of ckpt.names()) console.log(`${n}\t${ckpt.info(n).dtype}\t[${ckpt.info(n).shape.join(', ')}]`);
    await ckpt.close();
  });

void runMain(program);
