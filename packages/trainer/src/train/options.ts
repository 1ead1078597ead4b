/**
 * The training flags: the run_pt.sh / run_sft.sh argument set of Chinese-LLaMA-Alpaca (HF
 * TrainingArguments + the scripts' own model/data/LoRA arguments) in kebab-case, plus this trainer's
 * own (--stage, --dry-run, --json, --config). One table drives the commander options, the
 * `--config <file.json>` keys (kebab-case, snake_case as in the scripts, or camelCase) and validation.
 *
 * Precedence: built-in defaults < --config file < command-line flags.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { SCHEDULER_TYPES, type SchedulerType } from './schedule.js';
import { EXIT_USAGE, parseFiniteNumber, parseWholeNumber } from '@cllama/core';
import { TrainerError } from '../errors.js';

export type TrainMode = 'pretrain' | 'sft';

export interface TrainArgs {
  mode: TrainMode;
  /** Pre-training stage: 1 = embeddings only, 2 = LoRA + modules_to_save. Full fine-tuning: 'full' (bench/tests). */
  stage: 1 | 2 | 'full';
  modelNameOrPath: string;
  tokenizerNameOrPath: string;
  datasetDir: string;
  dataCacheDir: string | undefined;
  validationFile: string | undefined;
  validationSplitPercentage: number;
  blockSize: number;
  maxSeqLength: number;
  maxEvalSamples: number | undefined;
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  numTrainEpochs: number;
  maxSteps: number;
  learningRate: number;
  lrSchedulerType: SchedulerType;
  warmupRatio: number;
  warmupSteps: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  maxGradNorm: number;
  seed: number;
  loggingSteps: number;
  loggingFirstStep: boolean;
  evalSteps: number | undefined;
  saveSteps: number;
  saveTotalLimit: number | undefined;
  outputDir: string;
  overwriteOutputDir: boolean;
  resumeFromCheckpoint: string | undefined;
  doTrain: boolean;
  doEval: boolean;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  trainable: string[];
  modulesToSave: string[];
  peftPath: string | undefined;
  dryRun: boolean;
  /** Instead of training, write a torchrun / DeepSpeed launch folder here (src/launch/). */
  emitLaunch: string | undefined;
  json: boolean;
  noProgress: boolean;
  /** Data-parallel worker threads on the wasm / cpu backend (1 = this thread only). */
  threads: number;
  /**
   * Recompute each layer's activations in the backward pass instead of keeping them (HF
   * gradient_checkpointing); undefined (no flag): on only when the memory estimate fits with it and not
   * without (src/memory.ts chooseCheckpointing).
   */
  gradientCheckpointing: boolean | undefined;
  /** Flags of the Python scripts that have no meaning here (DeepSpeed, fp16, DDP...): accepted, reported, ignored. */
  ignored: string[];
}

/** A bad flag, config file value or combination: a usage error (exit code 2, as core's UsageError). */
export class TrainConfigError extends TrainerError {
  override name = 'TrainConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, exitCode: EXIT_USAGE });
  }
}

type Kind = 'string' | 'int' | 'float' | 'bool' | 'list';
interface Spec {
  key: keyof TrainArgs;
  flag: string;
  kind: Kind;
  help: string;
  modes?: TrainMode[];
  choices?: readonly string[];
}

const SPECS: Spec[] = [
  {
    key: 'stage',
    flag: 'stage',
    kind: 'string',
    help: 'pre-training stage: 1 (embeddings only), 2 (LoRA + embeddings/lm_head), full (every weight)',
    modes: ['pretrain'],
    choices: ['1', '2', 'full'],
  },
  { key: 'modelNameOrPath', flag: 'model-name-or-path', kind: 'string', help: 'HF LLaMA folder (config.json + safetensors)' },
  { key: 'tokenizerNameOrPath', flag: 'tokenizer-name-or-path', kind: 'string', help: 'tokenizer: .model file or HF tokenizer folder' },
  { key: 'datasetDir', flag: 'dataset-dir', kind: 'string', help: 'pretrain: folder of .txt files; sft: folder of Alpaca .json files' },
  { key: 'dataCacheDir', flag: 'data-cache-dir', kind: 'string', help: 'where the tokenized dataset cache lives (default <output-dir>/data_cache)' },
  { key: 'validationFile', flag: 'validation-file', kind: 'string', help: 'Alpaca .json used for evaluation', modes: ['sft'] },
  {
    key: 'validationSplitPercentage',
    flag: 'validation-split-percentage',
    kind: 'float',
    help: 'percent of the training data held out for eval when no --validation-file',
  },
  { key: 'blockSize', flag: 'block-size', kind: 'int', help: 'pre-training block length in tokens', modes: ['pretrain'] },
  { key: 'maxSeqLength', flag: 'max-seq-length', kind: 'int', help: 'SFT example truncation length', modes: ['sft'] },
  { key: 'maxEvalSamples', flag: 'max-eval-samples', kind: 'int', help: 'cap on evaluation examples' },
  { key: 'perDeviceTrainBatchSize', flag: 'per-device-train-batch-size', kind: 'int', help: 'micro-batch size' },
  { key: 'perDeviceEvalBatchSize', flag: 'per-device-eval-batch-size', kind: 'int', help: 'eval batch size' },
  { key: 'gradientAccumulationSteps', flag: 'gradient-accumulation-steps', kind: 'int', help: 'micro-batches per optimizer step' },
  { key: 'numTrainEpochs', flag: 'num-train-epochs', kind: 'float', help: 'epochs (ignored when --max-steps > 0)' },
  { key: 'maxSteps', flag: 'max-steps', kind: 'int', help: 'optimizer steps; -1 = from --num-train-epochs' },
  { key: 'learningRate', flag: 'learning-rate', kind: 'float', help: 'peak learning rate' },
  { key: 'lrSchedulerType', flag: 'lr-scheduler-type', kind: 'string', help: 'learning-rate schedule', choices: SCHEDULER_TYPES },
  { key: 'warmupRatio', flag: 'warmup-ratio', kind: 'float', help: 'warmup as a fraction of all steps' },
  { key: 'warmupSteps', flag: 'warmup-steps', kind: 'int', help: 'warmup steps (wins over --warmup-ratio when > 0)' },
  { key: 'weightDecay', flag: 'weight-decay', kind: 'float', help: 'AdamW decoupled weight decay' },
  { key: 'adamBeta1', flag: 'adam-beta1', kind: 'float', help: 'AdamW beta1' },
  { key: 'adamBeta2', flag: 'adam-beta2', kind: 'float', help: 'AdamW beta2' },
  { key: 'adamEpsilon', flag: 'adam-epsilon', kind: 'float', help: 'AdamW epsilon' },
  { key: 'maxGradNorm', flag: 'max-grad-norm', kind: 'float', help: 'global gradient-norm clip (0 = off)' },
  { key: 'seed', flag: 'seed', kind: 'int', help: 'seed for data order, LoRA init and dropout' },
  { key: 'loggingSteps', flag: 'logging-steps', kind: 'int', help: 'log the mean training loss every N steps' },
  { key: 'loggingFirstStep', flag: 'logging-first-step', kind: 'bool', help: 'also log step 1' },
  { key: 'evalSteps', flag: 'eval-steps', kind: 'int', help: 'evaluate every N steps (default: --logging-steps)' },
  { key: 'saveSteps', flag: 'save-steps', kind: 'int', help: 'write a checkpoint every N steps' },
  { key: 'saveTotalLimit', flag: 'save-total-limit', kind: 'int', help: 'keep at most N checkpoints (oldest deleted)' },
  { key: 'outputDir', flag: 'output-dir', kind: 'string', help: 'where checkpoints, logs and the result go' },
  { key: 'overwriteOutputDir', flag: 'overwrite-output-dir', kind: 'bool', help: 'start fresh even if --output-dir holds files or checkpoints' },
  {
    key: 'resumeFromCheckpoint',
    flag: 'resume-from-checkpoint',
    kind: 'string',
    help: 'checkpoint folder to resume from (default: latest checkpoint-N in --output-dir)',
  },
  { key: 'doTrain', flag: 'do-train', kind: 'bool', help: 'train (default on)' },
  { key: 'doEval', flag: 'do-eval', kind: 'bool', help: 'evaluate on the held-out split' },
  { key: 'loraRank', flag: 'lora-rank', kind: 'int', help: 'LoRA rank r' },
  { key: 'loraAlpha', flag: 'lora-alpha', kind: 'float', help: 'LoRA alpha (scaling alpha/r)' },
  { key: 'loraDropout', flag: 'lora-dropout', kind: 'float', help: 'dropout on the LoRA input' },
  { key: 'trainable', flag: 'trainable', kind: 'list', help: 'comma-separated LoRA target modules' },
  { key: 'modulesToSave', flag: 'modules-to-save', kind: 'list', help: 'comma-separated modules trained fully and saved with the adapter' },
  { key: 'peftPath', flag: 'peft-path', kind: 'string', help: 'existing PEFT adapter to continue from', modes: ['sft', 'pretrain'] },
  { key: 'dryRun', flag: 'dry-run', kind: 'bool', help: 'print the plan (parameters, tokens/step, steps, memory) from config.json alone and exit' },
  {
    key: 'emitLaunch',
    flag: 'emit-launch',
    kind: 'string',
    help: 'do not train: write a folder (tokenized data, tokenizer, train.py, launch.sh, DeepSpeed config) that runs this same training with torchrun + transformers/peft on GPUs',
  },
  {
    key: 'gradientCheckpointing',
    flag: 'gradient-checkpointing',
    kind: 'bool',
    help: "recompute each layer's activations in the backward pass instead of keeping them: far less memory for one more forward pass (HF gradient_checkpointing); unset: on only when the memory estimate fits with it and not without",
  },
  { key: 'json', flag: 'json', kind: 'bool', help: 'machine-readable output for --dry-run' },
  { key: 'noProgress', flag: 'no-progress', kind: 'bool', help: 'no progress bar and no step log lines on stderr (metrics.jsonl still gets every log)' },
  {
    key: 'threads',
    flag: 'threads',
    kind: 'int',
    help: 'wasm/cpu backend: threads that each compute the gradients of a share of every batch (data parallel, one model copy per thread)',
  },
];

/** Flags the original scripts pass that configure DeepSpeed / torch / DDP: accepted so the scripts' flag lists work, but ignored. */
const IGNORED_FLAGS = [
  'deepspeed',
  'fp16',
  'bf16',
  'torch-dtype',
  'ddp-timeout',
  'ddp-find-unused-parameters',
  'preprocessing-num-workers',
  'logging-strategy',
  'save-strategy',
  'evaluation-strategy',
  'load-in-kbits',
  'flash-attn',
];

const ALL_TARGETS = ['q_proj', 'v_proj', 'k_proj', 'o_proj', 'gate_proj', 'down_proj', 'up_proj'];

/** Defaults: HF TrainingArguments defaults, except the LoRA/data values the recipe's scripts set. */
export function defaultArgs(mode: TrainMode): Omit<TrainArgs, 'modelNameOrPath' | 'tokenizerNameOrPath' | 'datasetDir' | 'outputDir'> {
  return {
    mode,
    stage: mode === 'pretrain' ? 1 : 2,
    dataCacheDir: undefined,
    validationFile: undefined,
    validationSplitPercentage: 5,
    blockSize: 512,
    maxSeqLength: 512,
    maxEvalSamples: undefined,
    perDeviceTrainBatchSize: 8,
    perDeviceEvalBatchSize: 8,
    gradientAccumulationSteps: 1,
    numTrainEpochs: 3,
    maxSteps: -1,
    learningRate: 5e-5,
    lrSchedulerType: 'linear',
    warmupRatio: 0,
    warmupSteps: 0,
    weightDecay: 0,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    maxGradNorm: 1,
    seed: 42,
    loggingSteps: 500,
    loggingFirstStep: false,
    evalSteps: undefined,
    saveSteps: 500,
    saveTotalLimit: undefined,
    overwriteOutputDir: false,
    resumeFromCheckpoint: undefined,
    doTrain: true,
    doEval: false,
    loraRank: 8,
    loraAlpha: 32,
    loraDropout: 0.05,
    // stage 2 of the paper: attention projections (→ 6.06% on 7B); SFT: all seven (→ 6.22%)
    trainable: mode === 'pretrain' ? ['q_proj', 'v_proj', 'k_proj', 'o_proj'] : [...ALL_TARGETS],
    modulesToSave: ['embed_tokens', 'lm_head'],
    peftPath: undefined,
    dryRun: false,
    emitLaunch: undefined,
    json: false,
    noProgress: false,
    threads: 1,
    gradientCheckpointing: undefined,
    ignored: [],
  };
}

/** Registers every flag on a commander command (no commander defaults: precedence is resolved in resolveArgs). */
export function addTrainOptions(cmd: Command, mode: TrainMode): Command {
  cmd.option('--config <file.json>', 'JSON file with any of these options (kebab-case or snake_case keys); flags win');
  for (const spec of SPECS) {
    if (spec.modes && !spec.modes.includes(mode)) continue;
    const arg = spec.kind === 'bool' ? ' [bool]' : ` <${spec.kind === 'list' ? 'a,b,...' : spec.kind === 'string' ? 'value' : 'n'}>`;
    const help = spec.choices ? `${spec.help} (${spec.choices.join(' | ')})` : spec.help;
    if (spec.flag === 'no-progress') cmd.option('--no-progress', help);
    else cmd.option(`--${spec.flag}${arg}`, help);
  }
  for (const flag of IGNORED_FLAGS) cmd.option(`--${flag} [value]`, 'accepted for run_pt.sh/run_sft.sh compatibility; no effect here');
  return cmd;
}

function camel(key: string): string {
  return key.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseValue(spec: Spec, raw: unknown, source: string): unknown {
  const where = `${source} ${spec.flag}`;
  switch (spec.kind) {
    case 'bool':
      if (raw === true || raw === undefined || raw === 'true' || raw === 'True' || raw === '1') return true;
      if (raw === false || raw === 'false' || raw === 'False' || raw === '0') return false;
      throw new TrainConfigError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'int': {
      // digits only ('' and ' ' are not 0, 1e3 / 0x10 are not integers here), and exactly representable
      const n = parseWholeNumber(typeof raw === 'number' ? raw : String(raw));
      if (Number.isNaN(n)) throw new TrainConfigError(`${where}: expected an integer, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'float': {
      const n = parseFiniteNumber(typeof raw === 'number' ? raw : String(raw));
      if (Number.isNaN(n)) throw new TrainConfigError(`${where}: expected a number, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
      return items.map((s) => s.trim()).filter((s) => s.length > 0);
    }
    case 'string': {
      const s = String(raw);
      if (spec.choices && !spec.choices.includes(s)) throw new TrainConfigError(`${where}: '${s}' is not one of ${spec.choices.join(', ')}`);
      return s;
    }
  }
}

/**
 * Merges defaults, the --config file and the command-line flags (commander's parsed options object,
 * camelCase keys) into validated TrainArgs.
 */
export async function resolveArgs(mode: TrainMode, cliOptions: Record<string, unknown>): Promise<TrainArgs> {
  const byKey = new Map<string, Spec>();
  for (const spec of SPECS) if (!spec.modes || spec.modes.includes(mode)) byKey.set(camel(spec.flag), spec);
  const ignoredKeys = new Set(IGNORED_FLAGS.map(camel));
  const merged: Record<string, unknown> = { ...defaultArgs(mode) };
  const ignored: string[] = [];

  const apply = (key: string, raw: unknown, source: string) => {
    const spec = byKey.get(key);
    if (spec) {
      merged[spec.key] = parseValue(spec, raw, source);
      return;
    }
    if (ignoredKeys.has(key)) {
      ignored.push(key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
      return;
    }
    throw new TrainConfigError(`${source}: unknown option '${key}' for '${mode}'. Run 'cllama-train ${mode} --help' for the list.`);
  };

  if (typeof cliOptions.config === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(cliOptions.config, 'utf8'));
    } catch (err) {
      throw new TrainConfigError(`--config ${cliOptions.config}: cannot read it as JSON (${(err as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new TrainConfigError(`--config ${cliOptions.config}: expected a JSON object of options`);
    for (const [k, v] of Object.entries(parsed)) apply(camel(k), v, `--config ${cliOptions.config}:`);
  }
  for (const [k, v] of Object.entries(cliOptions)) {
    if (k === 'config' || v === undefined) continue; // an absent option (API callers), not the string 'undefined'
    if (k === 'progress') {
      if (v === false) merged.noProgress = true;
      continue;
    }
    apply(k, v, 'flag');
  }
  if (merged.stage === '1' || merged.stage === '2') merged.stage = Number(merged.stage);
  merged.ignored = ignored;
  return validateArgs(merged as unknown as TrainArgs);
}

export function validateArgs(a: TrainArgs): TrainArgs {
  const need = (ok: boolean, msg: string) => {
    if (!ok) throw new TrainConfigError(msg);
  };
  need(typeof a.modelNameOrPath === 'string' && a.modelNameOrPath.length > 0, '--model-name-or-path is required (a HF LLaMA folder with config.json)');
  if (!a.dryRun) {
    need(
      typeof a.tokenizerNameOrPath === 'string' && a.tokenizerNameOrPath.length > 0,
      '--tokenizer-name-or-path is required (a .model file or HF tokenizer folder)',
    );
    need(typeof a.datasetDir === 'string' && a.datasetDir.length > 0, '--dataset-dir is required');
    need(typeof a.outputDir === 'string' && a.outputDir.length > 0, '--output-dir is required');
  }
  for (const k of [
    'threads',
    'perDeviceTrainBatchSize',
    'perDeviceEvalBatchSize',
    'gradientAccumulationSteps',
    'loggingSteps',
    'saveSteps',
    'blockSize',
    'maxSeqLength',
    'loraRank',
  ] as const) {
    need(Number.isInteger(a[k]) && a[k] >= 1, `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a positive integer, got ${a[k]}`);
  }
  need(a.maxSteps === -1 || (Number.isInteger(a.maxSteps) && a.maxSteps > 0), `--max-steps must be -1 or a positive integer, got ${a.maxSteps}`);
  need(a.maxSteps > 0 || a.numTrainEpochs > 0, '--num-train-epochs must be > 0 when --max-steps is not set');
  need(a.learningRate >= 0, `--learning-rate must be >= 0, got ${a.learningRate}`);
  need(
    a.validationSplitPercentage >= 0 && a.validationSplitPercentage < 100,
    `--validation-split-percentage must be in [0, 100), got ${a.validationSplitPercentage}`,
  );
  need(a.loraDropout >= 0 && a.loraDropout < 1, `--lora-dropout must be in [0, 1), got ${a.loraDropout}`);
  need(a.saveTotalLimit === undefined || a.saveTotalLimit >= 1, `--save-total-limit must be >= 1, got ${a.saveTotalLimit}`);
  need(a.evalSteps === undefined || a.evalSteps >= 1, `--eval-steps must be >= 1, got ${a.evalSteps}`);
  need(a.stage === 1 || a.stage === 2 || a.stage === 'full', `--stage must be 1, 2 or full, got ${a.stage}`);
  need(a.emitLaunch === undefined || a.emitLaunch.trim() !== '', '--emit-launch needs a folder to write (got an empty path)');
  need(a.doTrain || a.dryRun, '--do-train false (evaluation only) is not a training run: use `cllama-train score` to evaluate a model or adapter');
  // the optimizer and schedule ranges of torch.optim.AdamW / HF TrainingArguments, checked before anything is created
  need(a.warmupRatio >= 0 && a.warmupRatio <= 1, `--warmup-ratio must be in [0, 1], got ${a.warmupRatio}`);
  need(a.warmupSteps >= 0, `--warmup-steps must be >= 0, got ${a.warmupSteps}`);
  need(a.adamBeta1 >= 0 && a.adamBeta1 < 1, `--adam-beta1 must be in [0, 1), got ${a.adamBeta1}`);
  need(a.adamBeta2 >= 0 && a.adamBeta2 < 1, `--adam-beta2 must be in [0, 1), got ${a.adamBeta2}`);
  need(a.adamEpsilon > 0, `--adam-epsilon must be > 0, got ${a.adamEpsilon}`);
  need(a.weightDecay >= 0, `--weight-decay must be >= 0, got ${a.weightDecay}`);
  need(a.maxGradNorm >= 0, `--max-grad-norm must be >= 0 (0 = no clipping), got ${a.maxGradNorm}`);
  need(a.numTrainEpochs >= 0, `--num-train-epochs must be >= 0, got ${a.numTrainEpochs}`);
  need(a.loraAlpha > 0, `--lora-alpha must be > 0, got ${a.loraAlpha}`);
  need(a.seed >= 0, `--seed must be a non-negative integer, got ${a.seed}`);
  need(a.maxEvalSamples === undefined || a.maxEvalSamples >= 1, `--max-eval-samples must be >= 1, got ${a.maxEvalSamples}`);
  // --peft-path continues a LoRA adapter; stage 1 (embeddings only) and full fine-tuning have no adapter to continue and
  // would ignore it without a word (run_clm_pt_with_peft.py loads it only on the LoRA path)
  need(
    a.peftPath === undefined || !(a.mode === 'pretrain' && a.stage === 1),
    `--peft-path is for LoRA training (pretrain --stage 2, sft): --stage 1 trains embed_tokens only and would ignore the adapter; drop --peft-path, or use --stage 2`,
  );
  need(
    a.peftPath === undefined || a.stage !== 'full',
    `--peft-path is for LoRA training (pretrain --stage 2, sft): --stage full trains the base model's own weights and would ignore the adapter; merge it first (cllama-lora merge) and train the merged model, or drop --peft-path`,
  );
  for (const t of a.trainable) need(ALL_TARGETS.includes(t), `--trainable: '${t}' is not a LoRA target of LLaMA; choose from ${ALL_TARGETS.join(',')}`);
  for (const m of a.modulesToSave) need(m === 'embed_tokens' || m === 'lm_head', `--modules-to-save: '${m}' is not supported; use embed_tokens and/or lm_head`);
  return a;
}

/** What the run trains, derived from the mode/stage/LoRA flags. */
export interface TrainablePlan {
  kind: 'embeddings' | 'lora' | 'full';
  loraTargets: string[];
  modulesToSave: string[];
}

export function trainablePlan(a: TrainArgs): TrainablePlan {
  if (a.mode === 'pretrain' && a.stage === 1) return { kind: 'embeddings', loraTargets: [], modulesToSave: ['embed_tokens'] };
  if (a.stage === 'full') return { kind: 'full', loraTargets: [], modulesToSave: [] };
  return { kind: 'lora', loraTargets: a.trainable, modulesToSave: a.modulesToSave };
}
