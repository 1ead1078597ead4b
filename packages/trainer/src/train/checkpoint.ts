/**
 * Checkpoints and the output folder.
 *
 * A checkpoint is a folder `checkpoint-<step>` in the output dir holding
 *   - the trained weights: a PEFT adapter (adapter_config.json + adapter_model.safetensors) for LoRA
 *     runs, else `trainable.safetensors` with the trainable weights under their HF names;
 *   - `optimizer.safetensors`: AdamW's exp_avg/<name> and exp_avg_sq/<name>, the step in metadata;
 *   - `trainer_state.json`: global step, data position, RNG state, scheduler, log history.
 * It is built in a hidden temporary sibling folder (every file fsynced) and renamed into place in one
 * step, so a kill at any moment leaves either the whole checkpoint or none under `checkpoint-<step>`.
 * Leftover temporary folders of a killed write are removed when the next run starts.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, writeSafetensors } from '@cllama/lora';
import { writeFileAtomic, writeFolderAtomic } from '@cllama/core';
import type { AdamWState } from './adamw.js';
import { LOCK_FILE } from './lock.js';
import { FINAL_STAGING_PREFIX } from './write-errors.js';
import type { RngState } from '@cllama/core';
import { TrainerError } from '../errors.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINABLE_WEIGHTS_FILE = 'trainable.safetensors';
export const STATE_FORMAT = 'cllama-trainer-state/1';
/** Our own files in an output dir; --overwrite-output-dir removes exactly these (and checkpoints). */
export const DATA_CACHE_DIR = 'data_cache';

export interface LogEntry {
  step: number;
  epoch: number;
  [metric: string]: number;
}

export interface TrainerState {
  format: typeof STATE_FORMAT;
  globalStep: number;
  maxSteps: number;
  /** Fractional epoch, as HF logs it. */
  epoch: number;
  /** Where the data stream stands: epoch number and micro-batches of that epoch already consumed. */
  data: { epoch: number; microBatch: number; seed: number; numMicroBatchesPerEpoch: number };
  rng: RngState;
  scheduler: { type: string; baseLr: number; totalSteps: number; warmupSteps: number };
  trainedTokens: number;
  trainSeconds: number;
  trainable: string[];
  logHistory: LogEntry[];
  /** What the run trains on and with, checked on resume (absent in checkpoints of older versions). */
  identity?: RunIdentity;
}

/**
 * Settings a resumed run must share with the checkpoint beyond the trainable names, data and seed:
 * LoRA's alpha (the adapter's scale, alpha / r — the weights mean something else under another one)
 * and the base model (baseModelFingerprint in session.ts: its architecture and sampled weight values).
 */
export interface RunIdentity {
  loraAlpha?: number;
  baseModel?: { fingerprint: string; path: string };
}

export class TrainingCheckpointError extends TrainerError {
  override name = 'TrainingCheckpointError';
}

export class OutputDirNotEmptyError extends TrainerError {
  override name = 'OutputDirNotEmptyError';
  constructor(readonly dir: string) {
    super(
      `output dir ${dir} already exists, is not empty and holds no checkpoint to resume; pass --overwrite-output-dir to start over there, or choose another --output-dir`,
    );
  }
}

const CHECKPOINT_RE = /^checkpoint-(\d+)$/;
/**
 * Hidden temporaries a killed run can leave at the top of the output dir: atomic writes of a checkpoint
 * (also the nested `..checkpoint-N.tmp-….tmp-…` of the adapter written into one), of the trainer's own
 * files, and the final output's staging folder.
 */
function isStale(name: string): boolean {
  if (name.replace(/^\.+/, '.').startsWith(FINAL_STAGING_PREFIX)) return true; // the staging folder, or a temporary next to it
  const m = /^\.+(.+?)\.(?:tmp|old|deleting)-\d+-[0-9a-f]+/.exec(name);
  return m !== null && (CHECKPOINT_RE.test(m[1]!) || OWN_OUTPUTS.has(m[1]!));
}

export function checkpointName(step: number): string {
  return `checkpoint-${step}`;
}

/** Complete checkpoints in `outputDir`, oldest first. */
export async function listCheckpoints(outputDir: string): Promise<Array<{ step: number; dir: string }>> {
  let entries: string[];
  try {
    entries = await fs.readdir(outputDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: Array<{ step: number; dir: string }> = [];
  for (const name of entries) {
    const m = CHECKPOINT_RE.exec(name);
    if (!m) continue;
    const dir = path.join(outputDir, name);
    if (await exists(path.join(dir, TRAINER_STATE_FILE))) found.push({ step: Number(m[1]), dir });
  }
  return found.sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(outputDir: string): Promise<string | undefined> {
  const all = await listCheckpoints(outputDir);
  return all.at(-1)?.dir;
}

export interface PreparedOutputDir {
  /** The checkpoint to resume from, if any. */
  resumeFrom: string | undefined;
}

/**
 * HF run_clm's rules: resume from the latest checkpoint in the output dir when there is one; refuse a
 * non-empty output dir without checkpoints; --overwrite-output-dir starts over (removing this trainer's
 * previous checkpoints and logs, nothing else). An explicit --resume-from-checkpoint always wins.
 * `planOutputDir` decides (and refuses) without writing anything; `prepareOutputDir` then creates the
 * folder and clears what the decision says — so a refused run leaves no folder behind.
 */
export async function planOutputDir(outputDir: string, opts: { overwrite: boolean; resumeFromCheckpoint?: string }): Promise<PreparedOutputDir> {
  if (opts.resumeFromCheckpoint) {
    if (!(await exists(path.join(opts.resumeFromCheckpoint, TRAINER_STATE_FILE)))) {
      throw new TrainingCheckpointError(
        `--resume-from-checkpoint ${opts.resumeFromCheckpoint}: no ${TRAINER_STATE_FILE} there; point it at a checkpoint-N folder written by cllama-train`,
      );
    }
    return { resumeFrom: opts.resumeFromCheckpoint };
  }
  let entries: string[];
  try {
    entries = await fs.readdir(outputDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { resumeFrom: undefined };
    if (code === 'ENOTDIR') throw new TrainingCheckpointError(`--output-dir ${outputDir} is a file; give a folder`);
    throw err;
  }
  if (opts.overwrite) return { resumeFrom: undefined };
  const latest = await latestCheckpoint(outputDir);
  if (latest) return { resumeFrom: latest };
  // what a run killed before its first checkpoint leaves (cache, log, plot, temporaries) does not count as content
  const others = entries.filter((n) => !RESTARTABLE_LEFTOVERS.has(n) && !isStale(n));
  if (others.length > 0) throw new OutputDirNotEmptyError(outputDir);
  return { resumeFrom: undefined };
}

export async function prepareOutputDir(outputDir: string, opts: { overwrite: boolean; resumeFromCheckpoint?: string }): Promise<PreparedOutputDir> {
  const plan = await planOutputDir(outputDir, opts);
  await fs.mkdir(outputDir, { recursive: true });
  await removeStaleTemporaries(outputDir);
  if (opts.overwrite && !opts.resumeFromCheckpoint) {
    for (const name of await fs.readdir(outputDir)) {
      if (CHECKPOINT_RE.test(name) || OWN_OUTPUTS.has(name)) await removeTree(path.join(outputDir, name));
    }
  }
  return plan;
}

// (the lock: a stale one of a killed run, or this run's own, taken before the decision is made again)
const RESTARTABLE_LEFTOVERS = new Set([DATA_CACHE_DIR, 'metrics.jsonl', 'training_plot.svg', LOCK_FILE]);

/** Files the trainer writes at the top of the output dir (besides checkpoints and the data cache). */
export const OWN_OUTPUTS = new Set([
  TRAINER_STATE_FILE,
  'metrics.jsonl',
  'training_plot.svg',
  'adapter_config.json',
  'adapter_model.safetensors',
  'config.json',
  'model.safetensors',
  'model.safetensors.index.json',
  'generation_config.json',
  'tokenizer.model',
  'tokenizer_config.json',
  'tokenizer.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'all_results.json',
  'train_results.json',
  'eval_results.json',
]);

async function removeStaleTemporaries(outputDir: string): Promise<void> {
  for (const name of await fs.readdir(outputDir)) {
    if (isStale(name)) await fs.rm(path.join(outputDir, name), { recursive: true, force: true });
  }
}

/** Removes a folder so that no partially deleted copy is ever visible under its real name. */
async function removeTree(target: string): Promise<void> {
  const aside = path.join(path.dirname(target), `.${path.basename(target)}.deleting-${process.pid}-${Date.now()}`);
  try {
    await fs.rename(target, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await fs.rm(aside, { recursive: true, force: true });
}

export interface CheckpointContent {
  state: TrainerState;
  optimizer: AdamWState;
  /** Writes the weights (adapter or trainable.safetensors) into the given folder. */
  writeWeights: (dir: string) => Promise<void>;
}

/**
 * Writes checkpoint-<step> atomically, then deletes the oldest checkpoints beyond `saveTotalLimit`.
 * Returns the checkpoint folder.
 */
export async function writeCheckpoint(outputDir: string, content: CheckpointContent, saveTotalLimit?: number): Promise<string> {
  const dir = path.join(outputDir, checkpointName(content.state.globalStep));
  await writeFolderAtomic(
    dir,
    async (tmp) => {
      await content.writeWeights(tmp);
      await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), content.optimizer.tensors, {
        metadata: { format: 'pt', step: String(content.optimizer.step) },
      });
      // written last: its presence marks a complete checkpoint even for readers that ignore the rename
      await writeFileAtomic(path.join(tmp, TRAINER_STATE_FILE), `${JSON.stringify(content.state, null, 2)}\n`);
    },
    { force: true },
  );
  if (saveTotalLimit !== undefined) {
    const all = await listCheckpoints(outputDir);
    for (const old of all.slice(0, Math.max(0, all.length - saveTotalLimit))) await removeTree(old.dir);
  }
  return dir;
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  const file = path.join(dir, TRAINER_STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(await fs.readFile(file, 'utf8')) as TrainerState;
  } catch (err) {
    throw new TrainingCheckpointError(`cannot read ${file} (${(err as Error).message}); the checkpoint is not one written by cllama-train`);
  }
  if (state.format !== STATE_FORMAT) throw new TrainingCheckpointError(`${file}: format '${String(state.format)}' is not ${STATE_FORMAT}`);
  return state;
}

export async function readOptimizerState(dir: string): Promise<AdamWState> {
  const file = path.join(dir, OPTIMIZER_FILE);
  if (!(await exists(file))) throw new TrainingCheckpointError(`${dir} has no ${OPTIMIZER_FILE}; cannot resume the optimizer from it`);
  const st = await SafetensorsFile.open(file);
  try {
    const step = Number(st.metadata?.step);
    if (!Number.isInteger(step)) throw new TrainingCheckpointError(`${file}: metadata has no integer 'step'`);
    const tensors: AdamWState['tensors'] = [];
    for (const name of st.names()) tensors.push({ name, shape: [...st.info(name).shape], data: await st.read(name) });
    return { step, tensors };
  } finally {
    await st.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
