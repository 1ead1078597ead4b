/**
 * `--emit-launch`: the pure half. From resolved TrainArgs (and the few Python-script flags cllama-train
 * accepts but ignores), decide what every flag becomes in the emitted folder and build the text of
 * its small files: launch.json, launch.sh, ds_zero2.json, requirements.txt, README.md.
 *
 * Each cllama-train flag is one of
 *   train.py   passed to train.py under the HF / peft name of the same meaning (TrainingArguments,
 *              LoraConfig, from_pretrained); launch.json "train_py_args" holds the values
 *   data       already applied here: the tokenized data in data/ was built with it
 *   n/a        no counterpart on torchrun (e.g. --threads, --backend): listed, and printed by the CLI
 * The HF run_pt.sh / run_sft.sh flags cllama-train ignores (--fp16, --deepspeed, …) mean something
 * here: the ones that matter become train.py arguments (--precision, --deepspeed, …).
 *
 * No I/O in this file; emit.ts writes the folder.
 */
import { trainablePlan, type TrainArgs } from '../train/options.js';
import { TrainerError } from '../errors.js';

export const LAUNCH_FORMAT = 'cllama-launch/1';
export const LAUNCH_DATA_FORMAT = 'cllama-launch-data/1';

export class LaunchError extends TrainerError {
  override name = 'LaunchError';
}

type Where = 'train.py' | 'data' | 'n/a';
interface FlagRule {
  where: Where;
  /** train.py argument (HF name) */
  py?: string;
  /** What it sets on the Python side. */
  hf?: string;
  note?: string;
}

const tp = (py: string, hf = `TrainingArguments.${py}`, note?: string): FlagRule => ({ where: 'train.py', py, hf, note });
const data = (note: string): FlagRule => ({ where: 'data', note });
const na = (note: string): FlagRule => ({ where: 'n/a', note });

/** cllama-train flag (TrainArgs key) → what it becomes. Keys missing here (added later) are reported as n/a. */
export const FLAG_RULES: Partial<Record<keyof TrainArgs, FlagRule>> = {
  mode: na('the command (pretrain | sft) is recorded in data/meta.json'),
  stage: tp(
    'train_kind',
    'requires_grad (embeddings: embed_tokens only) / get_peft_model (lora) / all weights (full)',
    'stage 1 → embeddings, 2 → lora, full → full; sft → lora',
  ),
  modelNameOrPath: tp('model_name_or_path', 'AutoModelForCausalLM.from_pretrained', 'launch.sh: MODEL_PATH overrides it'),
  tokenizerNameOrPath: data('the data was tokenized with it here; its files are copied to tokenizer/ and into the output folder at the end'),
  datasetDir: data('tokenized here into data/train_*.bin (and data/eval_*.bin when split)'),
  dataCacheDir: data("cllama's token cache used while exporting"),
  validationFile: data('tokenized here into data/eval_*.bin'),
  validationSplitPercentage: data("the eval split was drawn here with --seed (cllama's seeded split)"),
  blockSize: data('the pre-training blocks in data/ have this length'),
  maxSeqLength: data('the SFT records in data/ are cut to this length'),
  maxEvalSamples: tp('max_eval_samples', 'eval_dataset = first N eval records (as cllama)'),
  perDeviceTrainBatchSize: tp('per_device_train_batch_size', undefined, 'per GPU: the effective batch is this × gradient accumulation × number of GPUs'),
  perDeviceEvalBatchSize: tp('per_device_eval_batch_size'),
  gradientAccumulationSteps: tp('gradient_accumulation_steps'),
  numTrainEpochs: tp('num_train_epochs'),
  maxSteps: tp('max_steps'),
  learningRate: tp('learning_rate'),
  lrSchedulerType: tp('lr_scheduler_type'),
  warmupRatio: tp('warmup_ratio', 'TrainingArguments.warmup_ratio (transformers 5: warmup_steps as a fraction)'),
  warmupSteps: tp('warmup_steps'),
  weightDecay: tp('weight_decay'),
  adamBeta1: tp('adam_beta1'),
  adamBeta2: tp('adam_beta2'),
  adamEpsilon: tp('adam_epsilon'),
  maxGradNorm: tp('max_grad_norm'),
  seed: tp('seed', 'TrainingArguments.seed and data_seed', "the data order is HF's seeded sampler, not cllama's shuffle"),
  loggingSteps: tp('logging_steps'),
  loggingFirstStep: tp('logging_first_step'),
  evalSteps: tp('eval_steps', 'TrainingArguments.eval_steps (eval_strategy "steps" with --do-eval)'),
  saveSteps: tp('save_steps'),
  saveTotalLimit: tp('save_total_limit'),
  outputDir: tp('output_dir', undefined, 'launch.sh: OUTPUT_DIR overrides it'),
  overwriteOutputDir: tp('overwrite_output_dir', "train.py's run_clm rules (resume the last checkpoint-N, refuse other content)"),
  resumeFromCheckpoint: tp('resume_from_checkpoint', 'Trainer.train(resume_from_checkpoint=…)', 'an HF checkpoint-N written by train.py'),
  doTrain: na('train.py always trains'),
  doEval: tp('do_eval', 'TrainingArguments.do_eval + eval_strategy "steps" + eval_on_start'),
  loraRank: tp('lora_rank', 'LoraConfig.r'),
  loraAlpha: tp('lora_alpha', 'LoraConfig.lora_alpha'),
  loraDropout: tp('lora_dropout', 'LoraConfig.lora_dropout'),
  trainable: tp('trainable', 'LoraConfig.target_modules'),
  modulesToSave: tp('modules_to_save', 'LoraConfig.modules_to_save'),
  peftPath: tp(
    'peft_path',
    'PeftModel.from_pretrained(…, is_trainable=True)',
    "launch.sh: PEFT_PATH overrides it; the adapter's own r/alpha/targets win, as in cllama-train",
  ),
  dryRun: na('refused together with --emit-launch'),
  emitLaunch: na('this folder'),
  json: na('output format of cllama-train itself (--emit-launch prints its summary as JSON)'),
  noProgress: tp('disable_tqdm'),
  gradientCheckpointing: tp('gradient_checkpointing', undefined, 'train.py turns it on unless --gradient-checkpointing false is given'),
  threads: na('wasm/cpu data-parallel threads; on GPUs torchrun --nproc_per_node (launch.sh NPROC_PER_NODE) plays this role'),
  ignored: na('see "python_flags"'),
};

/** The run_pt.sh / run_sft.sh flags cllama-train accepts and ignores, and what they become here. */
const PYTHON_FLAG_RULES: Record<string, FlagRule> = {
  fp16: tp('precision', 'TrainingArguments.fp16', '--fp16 → --precision fp16'),
  bf16: tp('precision', 'TrainingArguments.bf16', '--bf16 → --precision bf16'),
  'torch-dtype': tp('torch_dtype', 'from_pretrained(dtype=…) of the frozen base weights'),
  deepspeed: tp(
    'deepspeed',
    'TrainingArguments.deepspeed',
    'train.py uses ds_zero2.json when deepspeed is importable; a config file path given here is kept as given',
  ),
  'ddp-timeout': tp('ddp_timeout'),
  'ddp-find-unused-parameters': na('train.py sets ddp_find_unused_parameters=False (every trainable weight gets a gradient)'),
  'preprocessing-num-workers': na('the data is tokenized already'),
  'logging-strategy': na("train.py logs by steps (cllama's behaviour)"),
  'save-strategy': na("train.py saves by steps (cllama's behaviour)"),
  'evaluation-strategy': na("train.py evaluates by steps with --do-eval (cllama's behaviour)"),
  'load-in-kbits': na('quantized training is not part of this recipe'),
  'flash-attn': na('transformers picks the attention kernel (sdpa by default)'),
};

/** n/a on torchrun, but they shape this command's own run: not worth a warning. */
const USED_BY_THE_EMITTER = new Set(['--emit-launch', '--json']);

export interface FlagMapping {
  flag: string;
  value: unknown;
  where: Where;
  train_py?: string;
  hf?: string;
  note?: string;
}

export interface LaunchPlan {
  trainKind: 'embeddings' | 'lora' | 'full';
  /** Defaults of train.py (launch.json "train_py_args"). */
  trainPyArgs: Record<string, string | number | boolean | null>;
  flags: FlagMapping[];
  pythonFlags: FlagMapping[];
  /** Flags the user gave that have no counterpart: what the CLI prints. */
  notApplicableGiven: FlagMapping[];
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function boolish(v: unknown): boolean | undefined {
  if (v === true || v === 'true' || v === 'True' || v === '1') return true;
  if (v === false || v === 'false' || v === 'False' || v === '0') return false;
  return undefined;
}

/**
 * What the emitted folder does with every flag. `rawFlags`: commander's parsed options (camelCase),
 * used for the values of the ignored Python-script flags and to know which flags the user gave.
 * (~120 lines on purpose: one decision per group of flags, kept together so every flag's fate reads in one place.)
 */
export function buildLaunchPlan(args: TrainArgs, rawFlags: Record<string, unknown> = {}, extraGiven: Record<string, unknown> = {}): LaunchPlan {
  if (args.dryRun) throw new LaunchError('--emit-launch writes a folder and --dry-run only prints a plan: give one of them');
  const plan = trainablePlan(args);
  for (const m of plan.modulesToSave) {
    if (m !== 'embed_tokens' && m !== 'lm_head') throw new LaunchError(`--modules-to-save '${m}' is not supported; use embed_tokens and/or lm_head`);
  }
  if (plan.kind === 'lora' && plan.loraTargets.length === 0 && !args.peftPath)
    throw new LaunchError('--trainable is empty: name the LoRA target modules (e.g. q_proj,v_proj)');
  const py: LaunchPlan['trainPyArgs'] = {
    model_name_or_path: args.modelNameOrPath,
    output_dir: args.outputDir,
    train_kind: plan.kind,
    peft_path: plan.kind === 'lora' ? (args.peftPath ?? null) : null,
    lora_rank: args.loraRank,
    lora_alpha: args.loraAlpha,
    lora_dropout: args.loraDropout,
    trainable: plan.loraTargets.join(','),
    modules_to_save: plan.modulesToSave.join(','),
    per_device_train_batch_size: args.perDeviceTrainBatchSize,
    per_device_eval_batch_size: args.perDeviceEvalBatchSize,
    gradient_accumulation_steps: args.gradientAccumulationSteps,
    num_train_epochs: args.numTrainEpochs,
    max_steps: args.maxSteps,
    learning_rate: args.learningRate,
    lr_scheduler_type: args.lrSchedulerType,
    warmup_ratio: args.warmupRatio,
    warmup_steps: args.warmupSteps,
    weight_decay: args.weightDecay,
    adam_beta1: args.adamBeta1,
    adam_beta2: args.adamBeta2,
    adam_epsilon: args.adamEpsilon,
    max_grad_norm: args.maxGradNorm,
    seed: args.seed,
    logging_steps: args.loggingSteps,
    logging_first_step: args.loggingFirstStep,
    eval_steps: args.evalSteps ?? null,
    save_steps: args.saveSteps,
    save_total_limit: args.saveTotalLimit ?? null,
    max_eval_samples: args.maxEvalSamples ?? null,
    do_eval: args.doEval,
    overwrite_output_dir: args.overwriteOutputDir,
    resume_from_checkpoint: args.resumeFromCheckpoint ?? null,
    disable_tqdm: args.noProgress,
    precision: 'auto',
    torch_dtype: 'auto',
    // on for GPUs unless the flag says otherwise (HF's default is off)
    gradient_checkpointing: args.gradientCheckpointing ?? true,
    deepspeed: 'auto',
  };

  const given = new Set([...Object.keys(rawFlags), ...Object.keys(extraGiven)]);
  const flags: FlagMapping[] = [];
  for (const key of Object.keys(args) as Array<keyof TrainArgs>) {
    const rule = FLAG_RULES[key] ?? na('no counterpart known to --emit-launch');
    if (key === 'ignored' || key === 'mode') continue; // mode is the subcommand, not a flag
    if (
      rule.where === 'data' &&
      ((args.mode === 'pretrain' && key === 'maxSeqLength') ||
        (args.mode === 'sft' && key === 'blockSize') ||
        (args.mode === 'pretrain' && key === 'validationFile'))
    )
      continue;
    if (key === 'stage' && args.mode === 'sft') continue;
    flags.push({
      flag: `--${kebab(key)}`,
      value: args[key] ?? null,
      where: rule.where,
      ...(rule.py ? { train_py: `--${rule.py}` } : {}),
      ...(rule.hf ? { hf: rule.hf } : {}),
      ...(rule.note ? { note: rule.note } : {}),
    });
  }
  if (extraGiven.backend !== undefined)
    flags.push({ flag: '--backend', value: extraGiven.backend, where: 'n/a', note: 'the tfjs backend; train.py runs on PyTorch (CUDA)' });

  // the Python-script flags: their values come from the command line (a --config file only says they were given)
  const pythonFlags: FlagMapping[] = [];
  for (const flag of args.ignored) {
    const rule = PYTHON_FLAG_RULES[flag] ?? na('no counterpart');
    const raw = rawFlags[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
    pythonFlags.push({
      flag: `--${flag}`,
      value: raw ?? '(from --config)',
      where: rule.where,
      ...(rule.py ? { train_py: `--${rule.py}` } : {}),
      ...(rule.hf ? { hf: rule.hf } : {}),
      ...(rule.note ? { note: rule.note } : {}),
    });
    if (rule.where !== 'train.py' || raw === undefined) continue;
    switch (flag) {
      case 'fp16':
      case 'bf16':
        if (boolish(raw) === true) {
          if (py.precision !== 'auto' && py.precision !== flag) throw new LaunchError('--fp16 and --bf16 are both set: choose one');
          py.precision = flag;
        } else if (boolish(raw) === undefined) throw new LaunchError(`--${flag}: expected true or false, got ${JSON.stringify(raw)}`);
        break;
      case 'torch-dtype': {
        const v = String(raw) === 'true' ? 'auto' : String(raw);
        if (!['auto', 'float32', 'bfloat16', 'float16'].includes(v)) throw new LaunchError(`--torch-dtype ${v}: use auto, float32, bfloat16 or float16`);
        py.torch_dtype = v;
        break;
      }
      case 'deepspeed':
        if (raw === true)
          throw new LaunchError('--deepspeed needs a value: a DeepSpeed config file, auto (ds_zero2.json when deepspeed is importable) or none');
        py.deepspeed = String(raw);
        break;
      case 'ddp-timeout': {
        const n = Number(raw);
        if (!Number.isInteger(n) || n <= 0) throw new LaunchError(`--ddp-timeout must be a positive integer (seconds), got ${JSON.stringify(raw)}`);
        py.ddp_timeout = n;
        break;
      }
    }
  }
  const camelOf = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const notApplicableGiven = [...flags, ...pythonFlags].filter((f) => f.where === 'n/a' && !USED_BY_THE_EMITTER.has(f.flag) && given.has(camelOf(f.flag)));
  return { trainKind: plan.kind, trainPyArgs: py, flags, pythonFlags, notApplicableGiven };
}

export interface DataSummary {
  mode: TrainArgs['mode'];
  train: { count: number; numTokens: number };
  eval: { count: number; numTokens: number } | undefined;
  vocabSize: number;
  padId: number;
}

export interface LaunchJson {
  format: typeof LAUNCH_FORMAT;
  created_by: string;
  command: string[] | null;
  mode: TrainArgs['mode'];
  train_kind: LaunchPlan['trainKind'];
  train_py_args: LaunchPlan['trainPyArgs'];
  flags: FlagMapping[];
  python_flags: FlagMapping[];
  not_applicable: Array<{ flag: string; value: unknown; why: string }>;
  data: DataSummary;
}

export function buildLaunchJson(args: TrainArgs, plan: LaunchPlan, summary: DataSummary, command: string[] | null, version: string): LaunchJson {
  return {
    format: LAUNCH_FORMAT,
    created_by: `@cllama/trainer ${version}: cllama-train ${args.mode} --emit-launch`,
    command,
    mode: args.mode,
    train_kind: plan.trainKind,
    train_py_args: plan.trainPyArgs,
    flags: plan.flags,
    python_flags: plan.pythonFlags,
    not_applicable: [...plan.flags, ...plan.pythonFlags].filter((f) => f.where === 'n/a').map((f) => ({ flag: f.flag, value: f.value, why: f.note ?? '' })),
    data: summary,
  };
}

/** DeepSpeed ZeRO-2 (no offload), as the original recipe's ds_zero2_no_offload.json; HF fills the "auto" values. */
export function deepSpeedZero2(): Record<string, unknown> {
  return {
    fp16: { enabled: 'auto', loss_scale: 0, loss_scale_window: 100, initial_scale_power: 16, hysteresis: 2, min_loss_scale: 1 },
    bf16: { enabled: 'auto' },
    zero_optimization: {
      stage: 2,
      allgather_partitions: true,
      allgather_bucket_size: 1e8,
      overlap_comm: true,
      reduce_scatter: true,
      reduce_bucket_size: 1e8,
      contiguous_gradients: true,
    },
    zero_allow_untested_optimizer: true,
    gradient_accumulation_steps: 'auto',
    gradient_clipping: 'auto',
    steps_per_print: 2000,
    train_batch_size: 'auto',
    train_micro_batch_size_per_gpu: 'auto',
    wall_clock_breakdown: false,
  };
}

/** Pinned to what `npm run test:interop` runs train.py with (interop/requirements.txt); deepspeed optional. */
export const REQUIREMENTS = [
  '# train.py needs these; the versions are the ones CI runs this folder with (npm run test:interop, torchrun on CPU).',
  '# It also runs on transformers 4.46+ and peft 0.13+ (renamed TrainingArguments are mapped at run time).',
  'torch==2.13.0',
  'transformers==5.18.0',
  'peft==0.21.0',
  'accelerate==1.15.0',
  'safetensors==0.8.0',
  'sentencepiece==0.2.2',
  'numpy==2.4.6',
  '# optional: ZeRO-2 across GPUs/nodes; train.py falls back to plain torchrun DDP without it (and says so).',
  '# 0.19.6 built from source ran ds_zero2.json on 2 CPU processes (docs/recipe.md)',
  '# deepspeed==0.19.6',
  '',
].join('\n');

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A path as one shell word: as it is when it is plainly safe, else single-quoted (for the printed "run it:" line). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(s) ? s : sh(s);
}

/** torchrun wrapper: nodes × GPUs from flags or environment; everything else goes to train.py. */
export function launchScript(py: LaunchPlan['trainPyArgs']): string {
  return `#!/usr/bin/env bash
# torchrun launcher written by cllama-train --emit-launch. Defaults: 1 node x every local GPU (1 process without CUDA;
# --nproc_per_node N runs N data-parallel CPU processes). The recorded paths are absolute: run it from anywhere.
#   bash launch.sh                                   # this machine, all GPUs
#   NPROC_PER_NODE=1 bash launch.sh --max_steps 10   # one GPU; extra arguments go to train.py
#   # N nodes x M GPUs: on node r (0..N-1), with node 0 reachable as MASTER_ADDR
#   bash launch.sh --nnodes N --nproc_per_node M --node_rank r --master_addr HOST --master_port 29500
# Paths (env): MODEL_PATH, OUTPUT_DIR, PEFT_PATH (empty: no adapter); PRECISION=auto|bf16|fp16|fp32; DEEPSPEED=auto|none|<config.json>
set -euo pipefail
HERE="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
NNODES="\${NNODES:-1}"
NPROC_PER_NODE="\${NPROC_PER_NODE:-}"
NODE_RANK="\${NODE_RANK:-0}"
MASTER_ADDR="\${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="\${MASTER_PORT:-29500}"
# the values recorded by cllama-train (PEFT_PATH set to empty = no adapter)
RECORDED_MODEL_PATH=${sh(String(py.model_name_or_path))}
RECORDED_OUTPUT_DIR=${sh(String(py.output_dir))}
RECORDED_PEFT_PATH=${sh(py.peft_path === null ? '' : String(py.peft_path))}
RECORDED_DEEPSPEED=${sh(String(py.deepspeed))}
MODEL_PATH="\${MODEL_PATH:-$RECORDED_MODEL_PATH}"
OUTPUT_DIR="\${OUTPUT_DIR:-$RECORDED_OUTPUT_DIR}"
PEFT_PATH="\${PEFT_PATH-$RECORDED_PEFT_PATH}"
PRECISION="\${PRECISION:-${py.precision}}"
DEEPSPEED="\${DEEPSPEED:-$RECORDED_DEEPSPEED}"
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nnodes) NNODES="$2"; shift 2 ;;
    --nproc_per_node|--nproc-per-node) NPROC_PER_NODE="$2"; shift 2 ;;
    --node_rank|--node-rank) NODE_RANK="$2"; shift 2 ;;
    --master_addr|--master-addr) MASTER_ADDR="$2"; shift 2 ;;
    --master_port|--master-port) MASTER_PORT="$2"; shift 2 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
if [ -z "$NPROC_PER_NODE" ]; then
  NPROC_PER_NODE="$(python3 -c 'import torch; print(max(torch.cuda.device_count(), 1))')"
fi
# CPU threads per process: the cores shared out between the local processes (torchrun would set 1)
if [ -z "\${OMP_NUM_THREADS:-}" ]; then
  CORES="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
  OMP_NUM_THREADS=$(( CORES / NPROC_PER_NODE ))
  [ "$OMP_NUM_THREADS" -ge 1 ] || OMP_NUM_THREADS=1
  export OMP_NUM_THREADS
fi
if command -v torchrun >/dev/null 2>&1; then RUN=(torchrun); else RUN=(python3 -m torch.distributed.run); fi
echo "launch.sh: $NNODES node(s) x $NPROC_PER_NODE process(es), node rank $NODE_RANK, master $MASTER_ADDR:$MASTER_PORT, $OMP_NUM_THREADS thread(s) each" >&2
exec "\${RUN[@]}" --nnodes "$NNODES" --nproc_per_node "$NPROC_PER_NODE" --node_rank "$NODE_RANK" \\
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \\
  "$HERE/train.py" --model_name_or_path "$MODEL_PATH" --output_dir "$OUTPUT_DIR" \\
  --precision "$PRECISION" --deepspeed "$DEEPSPEED" --peft_path "\${PEFT_PATH:-none}" "\${PASS[@]}"
`;
}

export function readmeText(args: TrainArgs, plan: LaunchPlan, summary: DataSummary): string {
  const rows = plan.flags.filter((f) => f.where === 'train.py').map((f) => `| \`${f.flag}\` | \`${f.train_py}\` | ${f.hf ?? ''} |`);
  const na = [...plan.flags, ...plan.pythonFlags].filter((f) => f.where === 'n/a').map((f) => `- \`${f.flag}\`: ${f.note ?? ''}`);
  const ev = summary.eval ? `${summary.eval.count} eval records (${summary.eval.numTokens} tokens)` : 'no eval split';
  return `# cllama-train ${args.mode} on torchrun

Written by \`cllama-train ${args.mode} … --emit-launch\`. It runs the same ${args.mode === 'pretrain' ? `pre-training (stage ${args.stage})` : 'instruction tuning'} with
transformers Trainer + peft on GPUs: ${plan.trainKind === 'embeddings' ? 'embed_tokens only (lm_head frozen)' : plan.trainKind === 'lora' ? 'LoRA + modules_to_save' : 'every weight'}.

- \`data/\`: ${summary.train.count} train records (${summary.train.numTokens} tokens), ${ev}, tokenized by cllama
  (${args.mode === 'pretrain' ? `blocks of ${args.blockSize}` : `input_ids + labels, cut at ${args.maxSeqLength}`}); int32/int64 little-endian files numpy
  memmaps read, described by \`data/meta.json\` (with the sha256 of every source file).
- \`tokenizer/\`: the tokenizer (copied into the output folder at the end).
- \`train.py\`: the training script; its defaults are \`launch.json\` "train_py_args", any can be overridden.
- \`launch.sh\`: torchrun (1 node × all local GPUs unless told).
- \`ds_zero2.json\`: DeepSpeed ZeRO-2, used when \`import deepspeed\` works (else plain DDP; train.py says which).
- \`requirements.txt\`: \`pip install -r requirements.txt\` (deepspeed optional).

## Run

\`\`\`sh
pip install -r requirements.txt
bash launch.sh                                  # 1 node, every GPU
NPROC_PER_NODE=1 bash launch.sh                 # one GPU
# 2 nodes x 8 GPUs: run on each node with its rank
bash launch.sh --nnodes 2 --nproc_per_node 8 --node_rank 0 --master_addr node0 --master_port 29500
bash launch.sh --nnodes 2 --nproc_per_node 8 --node_rank 1 --master_addr node0 --master_port 29500
\`\`\`

MODEL_PATH, OUTPUT_DIR, PEFT_PATH (environment; PEFT_PATH empty = a fresh adapter) replace the paths recorded here; PRECISION=bf16|fp16|fp32 and
DEEPSPEED=none|<file> override the automatic choices. The output folder is what cllama-train writes:
${plan.trainKind === 'lora' ? 'adapter_config.json + adapter_model.safetensors (PEFT layout, embed_tokens/lm_head as modules_to_save)' : 'config.json + model.safetensors'},
the tokenizer, metrics.jsonl (cllama's format), trainer_state.json and checkpoint-N/ folders, so
\`cllama-lora merge\`, \`cllama-train score|chat|generate\` and the recipe report take it as it is.

## Flags

| cllama-train | train.py | sets |
|---|---|---|
${rows.join('\n')}

Applied here, in data/: ${plan.flags
    .filter((f) => f.where === 'data')
    .map((f) => `\`${f.flag}\``)
    .join(', ')}.

Not applicable on torchrun:
${na.join('\n')}
`;
}
