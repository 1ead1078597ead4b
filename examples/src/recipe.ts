/**
 * `npm run recipe`: the Chinese-LLaMA-Alpaca recipe end to end, through the cllama packages.
 *
 *   0 base      a base LLaMA: --base <HF folder>, or a tiny one pre-trained from scratch on English
 *   1 vocab     train a Chinese SentencePiece model, merge it into the base tokenizer
 *   2 stage1    resize the embeddings, pre-train on Chinese with only embed_tokens trainable
 *   3 stage2    LoRA (attention) + embed_tokens/lm_head on Chinese
 *   4 sft       instruction tuning with LoRA on Alpaca-zh + pCLUE, continuing the stage-2 adapter
 *   5 merge     merge the adapter into an HF folder; generate answers before/after SFT
 *
 * Everything lands in runs/<name>/ with a report.md; a re-run skips finished phases.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineCommand, parseWholeNumber, runMain, UsageError } from '@cllama/core';
import { createLlamaConfig, readLlamaConfig } from '@cllama/lora';
import { buildHfTokenizerFiles, readModelProto } from '@cllama/tokenizer-merge';
import { BACKEND_CHOICES, LlamaModel, describeBackend, initBackend, loadLlama, saveLlama, type BackendChoice } from '@cllama/trainer';
import { PRESETS, SAMPLE_INSTRUCTIONS, phaseTrainFlags, type Preset, type TrainPhase } from './presets.js';
import { writeReport, type ReportInput } from './report.js';
import { RunStateStore } from './run-state.js';
import { runCli, runCliJson } from './tools.js';

const examplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = path.resolve(examplesDir, '..');
const DATA = path.join(examplesDir, 'data');
const LLAMA_TOKENIZER = path.join(DATA, 'llama_tokenizer.model');

export interface RecipeOptions {
  name: string;
  preset: Preset['name'];
  backend: BackendChoice;
  /** Data-parallel training threads (wasm/cpu backends); 'auto' = every core, 1 on tensorflow, webgpu and native. */
  threads: number | 'auto';
  base?: string;
  runsDir: string;
  fresh: boolean;
  quiet: boolean;
}

interface Ctx {
  opts: RecipeOptions;
  preset: Preset;
  runDir: string;
  log: string;
  store: RunStateStore;
  threads: number;
  /** The base model: --base, or 00-base pre-trained by the first phase. */
  baseDir: string;
}

const p = (ctx: Ctx, ...parts: string[]) => path.join(ctx.runDir, ...parts);
/** The per-run data folders the phases read (the trainer takes a folder of files). */
const data = (ctx: Ctx, ...parts: string[]) => p(ctx, 'data', ...parts);
/** The merged tokenizer of phase 1, used by every later phase. */
const mergedTokenizer = (ctx: Ctx) => p(ctx, '01-vocab/merged');
/** Where a CLI's transcript goes, and whether it is echoed. */
const logTo = (ctx: Ctx) => ({ logFile: ctx.log, quiet: ctx.opts.quiet });

function trainFlags(ctx: Ctx, t: TrainPhase): string[] {
  return [
    '--backend',
    ctx.opts.backend,
    '--threads',
    String(ctx.threads),
    ...phaseTrainFlags(t, ctx.preset.maxEvalSamples),
    ...(ctx.opts.quiet || !process.stdout.isTTY ? ['--no-progress'] : []),
  ];
}

async function phase(ctx: Ctx, name: string, fn: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const done = ctx.store.done(name);
  if (done) {
    console.log(`\n== ${name}: done in an earlier run (${done.seconds.toFixed(1)} s), skipped`);
    return done.results;
  }
  console.log(`\n== ${name}`);
  const t0 = performance.now();
  const results = await fn();
  const seconds = (performance.now() - t0) / 1000;
  ctx.store.record(name, seconds, results);
  console.log(`== ${name}: ${seconds.toFixed(1)} s`);
  return results;
}

/** Held-out Chinese perplexity of a model (+ adapter) with the merged tokenizer. */
async function scoreHeldout(ctx: Ctx, model: string, lora?: string): Promise<{ loss: number; perplexity: number; tokens: number }> {
  return runCliJson(
    'cllama-train',
    [
      'score',
      '--model',
      model,
      ...(lora ? ['--lora', lora] : []),
      '--tokenizer',
      p(ctx, '01-vocab/merged'),
      '--text-file',
      p(ctx, 'data/zh_heldout.txt'),
      '--block-size',
      String(ctx.preset.blockSize),
      '--backend',
      ctx.opts.backend,
    ],
    logTo(ctx),
  );
}

/** Eval losses the trainer logged (metrics.jsonl), in step order. */
function evalLosses(outputDir: string): Array<{ step: number; loss: number }> {
  const file = path.join(outputDir, 'metrics.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((e) => typeof e.eval_loss === 'number')
    .map((e) => ({ step: e.step, loss: e.eval_loss }));
}

function firstLines(src: string, dst: string, n: number): void {
  const lines = readFileSync(src, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  writeFileSync(dst, `${lines.slice(0, n).join('\n')}\n`);
}

async function generate(ctx: Ctx, model: string, lora: string | undefined, instruction: string): Promise<string> {
  const out = await runCli(
    'cllama-train',
    [
      'generate',
      '--model',
      model,
      ...(lora ? ['--lora', lora] : []),
      '--tokenizer',
      p(ctx, '01-vocab/merged'),
      '--prompt',
      instruction,
      '--alpaca',
      // Seeded sampling: a model this small falls into one repeated token under greedy decoding.
      '--temperature',
      '0.7',
      '--top-k',
      '40',
      '--top-p',
      '0.9',
      '--repetition-penalty',
      '1.3',
      '--seed',
      '1',
      '--max-new-tokens',
      String(ctx.preset.generation.maxNewTokens),
      '--backend',
      ctx.opts.backend,
    ],
    { capture: true, ...logTo(ctx) },
  );
  return out.trim();
}

/** The run folder, the backend and its thread count, the run state, and the phases' data copied in. */
async function setUp(opts: RecipeOptions): Promise<{ ctx: Ctx; backendName: string }> {
  const preset = PRESETS[opts.preset];
  const runDir = path.resolve(opts.runsDir, opts.name);
  if (opts.fresh) rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const backend = await initBackend(opts.backend);
  // a single-threaded backend (tfjs-wasm / cpu) gets the trainer's --threads, which shares every batch
  // among the cores; the others already use every core or drive one device (the backend's facts say)
  const threads = !backend.facts.threads.dataParallel ? 1 : opts.threads === 'auto' ? Math.min(availableParallelism(), 8) : opts.threads;
  const baseDir = opts.base ? path.resolve(opts.base) : path.join(runDir, '00-base');
  const ctx: Ctx = { opts, preset, runDir, log: path.join(runDir, 'recipe.log'), store: new RunStateStore(runDir, preset.name), threads, baseDir };
  ctx.store.state.backend = `${backend.name} (${backend.package}), ${threads} training thread${threads === 1 ? '' : 's'}`;
  ctx.store.save();
  console.log(`recipe '${opts.name}' (preset ${preset.name}) in ${runDir}, backend ${backend.name} via ${backend.package}, ${threads} training thread(s)`);
  console.error(`recipe: ${describeBackend(backend)}`);

  for (const dir of ['en', 'zh', 'sft']) mkdirSync(data(ctx, dir), { recursive: true });
  copyFileSync(path.join(DATA, 'en_wiki.txt'), data(ctx, 'en/en_wiki.txt'));
  copyFileSync(path.join(DATA, 'en_c4.txt'), data(ctx, 'en/en_c4.txt'));
  firstLines(path.join(DATA, 'zh_train.txt'), data(ctx, 'zh/zh_train.txt'), preset.vocab.trainLines);
  firstLines(path.join(DATA, 'zh_heldout.txt'), data(ctx, 'zh_heldout.txt'), preset.heldoutLines);
  return { ctx, backendName: backend.name };
}

/** 0. The base model: --base as given, or a tiny LLaMA pre-trained from scratch on the bundled English text. */
async function basePhase(ctx: Ctx): Promise<Record<string, unknown>> {
  const { opts, preset, baseDir } = ctx;
  if (opts.base) {
    const config = await readLlamaConfig(baseDir);
    return { source: baseDir, hiddenSize: config.hiddenSize, layers: config.numHiddenLayers, vocabSize: config.vocabSize };
  }
  const llamaProto = await readModelProto(LLAMA_TOKENIZER);
  const b = preset.base;
  const config = createLlamaConfig({
    hiddenSize: b.hiddenSize,
    intermediateSize: b.intermediateSize,
    numHiddenLayers: b.numHiddenLayers,
    numAttentionHeads: b.numAttentionHeads,
    numKeyValueHeads: b.numKeyValueHeads,
    vocabSize: llamaProto.pieces.length,
    maxPositionEmbeddings: Math.max(512, preset.maxSeqLength),
  });
  const init = p(ctx, '00-base-init');
  const model = LlamaModel.random(config, 1234);
  const parameters = model.variables().reduce((n, v) => n + v.size, 0);
  await saveLlama(init, model, { force: true });
  model.dispose();
  const files = buildHfTokenizerFiles(llamaProto, { padToken: null });
  for (const [file, content] of Object.entries(files)) writeFileSync(path.join(init, file), content);
  await runCli(
    'cllama-train',
    [
      'pretrain',
      '--stage',
      'full',
      '--model-name-or-path',
      init,
      '--tokenizer-name-or-path',
      init,
      '--dataset-dir',
      data(ctx, 'en'),
      '--output-dir',
      baseDir,
      '--block-size',
      String(preset.blockSize),
      '--validation-split-percentage',
      '5',
      ...trainFlags(ctx, b.train),
    ],
    logTo(ctx),
  );
  const ev = evalLosses(baseDir);
  return {
    source: "pre-trained from scratch on the bundled English text (en_wiki.txt, en_c4.txt) with LLaMA's tokenizer",
    hiddenSize: b.hiddenSize,
    layers: b.numHiddenLayers,
    heads: b.numAttentionHeads,
    intermediateSize: b.intermediateSize,
    vocabSize: config.vocabSize,
    parameters,
    steps: b.train.maxSteps,
    evalLossFirst: ev[0]?.loss,
    evalLossLast: ev.at(-1)?.loss,
  };
}

/** 1. Vocabulary expansion: a Chinese SentencePiece model merged into the base tokenizer, compared on held-out text. */
async function vocabPhase(ctx: Ctx): Promise<Record<string, unknown>> {
  const v = ctx.preset.vocab;
  mkdirSync(p(ctx, '01-vocab'), { recursive: true });
  await runCli(
    'cllama-tokenizer',
    [
      'train',
      '--input',
      data(ctx, 'zh/zh_train.txt'),
      '--vocab-size',
      String(v.vocabSize),
      '--model-type',
      v.modelType,
      '--character-coverage',
      String(v.characterCoverage),
      '--out',
      p(ctx, '01-vocab/zh_sp'),
      '--force', // a phase re-run after an interruption replaces its own output
    ],
    logTo(ctx),
  );
  // Distinct scores for the added pieces: tokenizer.json (HF / transformers.js) then agrees with
  // SentencePiece id for id (the reference's score-0 pieces do not; see docs/tokenizer-merge.md).
  const merge = await runCliJson<Record<string, unknown>>(
    'cllama-tokenizer',
    [
      'merge',
      '--base',
      ctx.baseDir,
      '--add',
      p(ctx, '01-vocab/zh_sp.model'),
      '--out',
      mergedTokenizer(ctx),
      '--pad-token',
      '[PAD]',
      '--distinct-scores',
      '--force',
    ],
    logTo(ctx),
  );
  const compare = await runCliJson<{ models: Array<{ tokensPerChar: number; vocabSize: number }> }>(
    'cllama-tokenizer',
    ['compare', '--model', ctx.baseDir, '--model', mergedTokenizer(ctx), '--file', data(ctx, 'zh_heldout.txt')],
    logTo(ctx),
  );
  const [before, after] = compare.models;
  return {
    chineseVocabSize: v.vocabSize,
    modelType: v.modelType,
    trainLines: v.trainLines,
    merge,
    baseVocab: before.vocabSize,
    mergedVocab: after.vocabSize,
    tokensPerCharBefore: before.tokensPerChar,
    tokensPerCharAfter: after.tokensPerChar,
    reduction: before.tokensPerChar / after.tokensPerChar,
  };
}

/** 2. Stage 1: the base resized to the merged vocabulary, then pre-trained on Chinese with only embed_tokens trainable. */
async function stage1Phase(ctx: Ctx, mergedSize: number): Promise<Record<string, unknown>> {
  const resized = p(ctx, '02-resized');
  const model = await loadLlama(ctx.baseDir); // on the backend chosen in setUp
  model.resizeTokenEmbeddings(mergedSize, 42);
  await saveLlama(resized, model, { force: true });
  model.dispose();
  const before = await scoreHeldout(ctx, resized);
  await runCli(
    'cllama-train',
    [
      'pretrain',
      '--stage',
      '1',
      '--model-name-or-path',
      resized,
      '--tokenizer-name-or-path',
      mergedTokenizer(ctx),
      '--dataset-dir',
      data(ctx, 'zh'),
      '--output-dir',
      p(ctx, '02-stage1'),
      '--block-size',
      String(ctx.preset.blockSize),
      '--validation-split-percentage',
      '5',
      ...trainFlags(ctx, ctx.preset.stage1),
    ],
    logTo(ctx),
  );
  const after = await scoreHeldout(ctx, p(ctx, '02-stage1'));
  return { heldoutBefore: before, heldoutAfter: after, evalLosses: evalLosses(p(ctx, '02-stage1')) };
}

/** The LoRA flags of stage 2 and SFT. */
function loraFlags(s: Preset['stage2']): string[] {
  return [
    '--lora-rank',
    String(s.loraRank),
    '--lora-alpha',
    String(s.loraAlpha),
    '--lora-dropout',
    String(s.loraDropout),
    '--trainable',
    s.targets.join(','),
    '--modules-to-save',
    'embed_tokens,lm_head',
  ];
}

/** 3. Stage 2: LoRA + embed_tokens / lm_head on Chinese. */
async function stage2Phase(ctx: Ctx): Promise<Record<string, unknown>> {
  const s = ctx.preset.stage2;
  await runCli(
    'cllama-train',
    [
      'pretrain',
      '--stage',
      '2',
      '--model-name-or-path',
      p(ctx, '02-stage1'),
      '--tokenizer-name-or-path',
      mergedTokenizer(ctx),
      '--dataset-dir',
      data(ctx, 'zh'),
      '--output-dir',
      p(ctx, '03-stage2'),
      '--block-size',
      String(ctx.preset.blockSize),
      '--validation-split-percentage',
      '5',
      ...loraFlags(s),
      ...trainFlags(ctx, s),
    ],
    logTo(ctx),
  );
  const after = await scoreHeldout(ctx, p(ctx, '02-stage1'), p(ctx, '03-stage2'));
  return { heldoutAfter: after, evalLosses: evalLosses(p(ctx, '03-stage2')) };
}

/** The SFT data: Alpaca-zh and pCLUE converted and mixed by @cllama/alpaca-data, split into train and eval files. */
async function sftData(ctx: Ctx): Promise<{ train: number; eval: number }> {
  const s = ctx.preset.sft;
  const d = p(ctx, '04-data');
  mkdirSync(d, { recursive: true });
  await runCli(
    'cllama-data',
    ['convert', '--from', 'alpaca', path.join(DATA, 'alpaca_zh_demo.json'), '--out', path.join(d, 'alpaca_zh.jsonl'), '--force'],
    logTo(ctx),
  );
  await runCli(
    'cllama-data',
    ['convert', '--from', 'pclue', path.join(DATA, 'pCLUE_train_9.json'), '--out', path.join(d, 'pclue.jsonl'), '--force'],
    logTo(ctx),
  );
  await runCli(
    'cllama-data',
    [
      'mix',
      '--source',
      `alpaca_zh=${path.join(d, 'alpaca_zh.jsonl')}:${s.alpacaZh}`,
      '--source',
      `pclue=${path.join(d, 'pclue.jsonl')}:${s.pclue}`,
      '--seed',
      '42',
      '--out',
      path.join(d, 'mixed.jsonl'),
      '--report',
      path.join(d, 'mix_report.md'),
      '--tokenizer',
      mergedTokenizer(ctx),
      '--quiet',
      '--force',
    ],
    logTo(ctx),
  );
  const records = readFileSync(path.join(d, 'mixed.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
  const evalRecords = records.slice(0, s.evalExamples);
  const trainRecords = records.slice(s.evalExamples);
  writeFileSync(data(ctx, 'sft/train.json'), `${JSON.stringify(trainRecords, null, 1)}\n`);
  writeFileSync(data(ctx, 'sft_eval.json'), `${JSON.stringify(evalRecords, null, 1)}\n`);
  return { train: trainRecords.length, eval: evalRecords.length };
}

/** 4. Instruction tuning on the mixed SFT data, continuing the stage-2 adapter. */
async function sftPhase(ctx: Ctx): Promise<Record<string, unknown>> {
  const s = ctx.preset.sft;
  const examples = await sftData(ctx);
  await runCli(
    'cllama-train',
    [
      'sft',
      '--model-name-or-path',
      p(ctx, '02-stage1'),
      '--tokenizer-name-or-path',
      mergedTokenizer(ctx),
      '--peft-path',
      p(ctx, '03-stage2'),
      '--dataset-dir',
      data(ctx, 'sft'),
      '--validation-file',
      data(ctx, 'sft_eval.json'),
      '--output-dir',
      p(ctx, '04-sft'),
      '--max-seq-length',
      String(ctx.preset.maxSeqLength),
      ...loraFlags(s),
      ...trainFlags(ctx, s),
    ],
    logTo(ctx),
  );
  return { trainExamples: examples.train, evalExamples: examples.eval, evalLosses: evalLosses(p(ctx, '04-sft')) };
}

/** 5. The SFT adapter merged into one HF folder, scored, and generations compared before and after SFT. */
async function mergePhase(ctx: Ctx): Promise<Record<string, unknown>> {
  await runCli(
    'cllama-lora',
    [
      'merge',
      '--base',
      p(ctx, '02-stage1'),
      '--lora',
      p(ctx, '04-sft'),
      '--tokenizer',
      mergedTokenizer(ctx),
      '--out',
      p(ctx, '05-merged'),
      '--force',
      '--no-progress',
    ],
    logTo(ctx),
  );
  const heldout = await scoreHeldout(ctx, p(ctx, '05-merged'));
  const generations: Array<{ instruction: string; beforeSft: string; afterSft: string }> = [];
  for (const instruction of SAMPLE_INSTRUCTIONS) {
    const beforeSft = await generate(ctx, p(ctx, '02-stage1'), p(ctx, '03-stage2'), instruction);
    const afterSft = await generate(ctx, p(ctx, '05-merged'), undefined, instruction);
    generations.push({ instruction, beforeSft, afterSft });
  }
  return { heldoutAfter: heldout, generations };
}

/** The recipe: each phase in order (a phase finished in an earlier run is skipped), then report.md. */
export async function runRecipe(opts: RecipeOptions): Promise<ReportInput> {
  const { ctx, backendName } = await setUp(opts);
  const base = await phase(ctx, 'base', () => basePhase(ctx));
  const vocab = await phase(ctx, 'vocab', () => vocabPhase(ctx));
  const stage1 = await phase(ctx, 'stage1', () => stage1Phase(ctx, (vocab.mergedVocab as number) ?? 0));
  const stage2 = await phase(ctx, 'stage2', () => stage2Phase(ctx));
  const sft = await phase(ctx, 'sft', () => sftPhase(ctx));
  const merged = await phase(ctx, 'merge', () => mergePhase(ctx));
  const report: ReportInput = {
    name: opts.name,
    preset: ctx.preset,
    backend: ctx.store.state.backend ?? backendName,
    phases: ctx.store.state.phases,
    base,
    vocab,
    stage1,
    stage2,
    sft,
    merged,
  };
  writeReport(path.join(ctx.runDir, 'report.md'), report);
  console.log(`\nreport: ${path.join(ctx.runDir, 'report.md')}`);
  return report;
}

function parseThreads(v: string): number | 'auto' {
  if (v === 'auto') return 'auto';
  const n = parseWholeNumber(v);
  if (!(n >= 1)) throw new UsageError(`--threads must be 'auto' or a positive integer, got '${v}'`);
  return n;
}

const recipeCommand = defineCommand<RecipeOptions>({
  meta: {
    name: 'recipe',
    description: 'the three-phase Chinese-LLaMA-Alpaca recipe end to end (vocabulary → pre-training → SFT → merge)',
    example: 'npm run recipe -- --preset fast --name ci',
  },
  args: {
    name: { type: 'string', valueHint: 'name', description: 'run name: outputs go to <runs-dir>/<name>', default: 'demo' },
    preset: {
      type: 'string',
      valueHint: 'preset',
      description: 'sizes: fast (CI), cpu (default, ≤ 20 min on 2 cores), gpu (real sizes, tfjs-node-gpu)',
      choices: ['fast', 'cpu', 'gpu'],
      default: 'cpu',
    },
    backend: {
      type: 'string',
      valueHint: 'name',
      description: 'tfjs backend (auto = tfjs-node-gpu, else WebGPU on a real GPU, else tfjs-node, else wasm)',
      choices: BACKEND_CHOICES,
      default: 'auto',
    },
    threads: {
      type: 'string',
      valueHint: 'n',
      description: "training threads on the wasm/cpu backends (data parallel): a number, or 'auto' = every core",
      parse: parseThreads,
      default: 'auto',
    },
    base: { type: 'string', valueHint: 'dir', description: 'HF LLaMA folder to start from (with tokenizer.model); default: pre-train a tiny one' },
    'runs-dir': { type: 'string', valueHint: 'dir', description: 'where runs are written', default: path.join(repoRoot, 'runs') },
    fresh: { type: 'boolean', description: 'delete the run folder first instead of resuming it' },
    quiet: { type: 'boolean', description: 'print only phase lines' },
  },
  run: async ({ args }) => {
    await runRecipe({ ...args, fresh: !!args.fresh, quiet: !!args.quiet });
  },
});

void runMain(recipeCommand);
