/**
 * `--emit-launch <dir>`: the I/O edge. Validates everything first (flags, model config, adapter,
 * checkpoint, target folder), then builds the folder in a temporary sibling and renames it into place:
 *
 *   data/        the records cllama-train would train on, from its own data preparation
 *                (prepareTrainData in train/data.ts: the same cache and seeded split), one record
 *                per BatchSource.batch([i]) — the collator's input before padding:
 *                <split>_input_ids.bin int32 LE flat, <split>_offsets.bin int64 LE (count + 1),
 *                <split>_labels.bin int32 LE (SFT; -100 = not trained), meta.json
 *   tokenizer/   the tokenizer files
 *   train.py     the template shipped in the package (launch-template/train.py)
 *   launch.sh, ds_zero2.json, requirements.txt, README.md, launch.json (plan.ts)
 *
 * Every path recorded there is absolute (withAbsolutePaths), so launch.sh runs from any directory. A
 * launch folder inside --output-dir is refused up front (train.py would refuse that output folder).
 *
 * An existing non-empty folder is never replaced: the emitted folder may hold a user's edits, so the
 * user removes it or picks another path.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import { endianness } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFolderAtomic } from '@cllama/core';
import { PeftAdapter, TOKENIZER_FILES, readLlamaConfig } from '@cllama/lora';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { STATE_FORMAT, TRAINER_STATE_FILE } from '../train/checkpoint.js';
import { prepareTrainData, reportUntrained, type PreparedData } from '../train/data.js';
import type { BatchSource } from '../train/micro-batch.js';
import type { TrainArgs } from '../train/options.js';
import {
  LAUNCH_DATA_FORMAT,
  LaunchError,
  buildLaunchJson,
  buildLaunchPlan,
  deepSpeedZero2,
  launchScript,
  readmeText,
  REQUIREMENTS,
  type DataSummary,
  type LaunchPlan,
} from './plan.js';

export const TRAIN_PY_TEMPLATE = 'launch-template/train.py';

/** train.py shipped with the package: found from the bundle (dist/) or the sources (src/launch/). */
export function trainPyTemplatePath(): string {
  const here = path.dirname(typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url));
  for (let dir = here, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, TRAIN_PY_TEMPLATE);
    if (existsSync(candidate)) return candidate;
  }
  throw new LaunchError(`cannot find ${TRAIN_PY_TEMPLATE} next to the installed @cllama/trainer (looked up from ${here}); reinstall the package`);
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function folderIsEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    const st = await fs.stat(dir);
    return st.isDirectory() && (await fs.readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/** The files cllama-train's data preparation reads, in its order (data.ts listFiles). */
async function sourceFiles(args: TrainArgs): Promise<string[]> {
  const exts = args.mode === 'pretrain' ? ['.txt'] : ['.json', '.jsonl'];
  let entries: string[];
  try {
    entries = await fs.readdir(args.datasetDir);
  } catch {
    throw new LaunchError(`--dataset-dir ${args.datasetDir} cannot be read; give a folder of ${exts.join(' / ')} files`);
  }
  const files = entries
    .filter((f) => exts.some((e) => f.endsWith(e)))
    .sort()
    .map((f) => path.join(args.datasetDir, f));
  if (args.mode === 'sft' && args.validationFile) files.push(args.validationFile);
  return files;
}

/** Every check that can fail on the user's input, before anything is written. */
async function validate(args: TrainArgs, dir: string): Promise<void> {
  if (!(await folderIsEmptyOrAbsent(dir))) {
    throw new LaunchError(
      `--emit-launch ${dir} exists and is not empty; remove it or choose another folder (an emitted folder is never replaced, it may hold your edits)`,
    );
  }
  const resolvedTarget = path.resolve(dir);
  const outputDir = path.resolve(args.outputDir);
  if (outputDir === resolvedTarget)
    throw new LaunchError(
      '--emit-launch and --output-dir are the same folder; train.py writes its results to --output-dir, give the launch folder another path',
    );
  const inside = path.relative(outputDir, resolvedTarget);
  if (!inside.startsWith('..') && !path.isAbsolute(inside))
    throw new LaunchError(
      `--emit-launch ${dir} is inside --output-dir ${args.outputDir}; train.py refuses an output folder that holds other files, so put the launch folder beside it`,
    );
  await readLlamaConfig(args.modelNameOrPath).catch((err: Error) => {
    throw new LaunchError(`--model-name-or-path ${args.modelNameOrPath}: ${err.message}`);
  });
  if (args.peftPath && !(args.mode === 'pretrain' && args.stage !== 2)) {
    const adapter = await PeftAdapter.open(args.peftPath).catch((err: Error) => {
      throw new LaunchError(`--peft-path ${args.peftPath}: ${err.message}`);
    });
    await adapter.close();
  }
  if (args.resumeFromCheckpoint) {
    const state = await fs.readFile(path.join(args.resumeFromCheckpoint, TRAINER_STATE_FILE), 'utf8').catch(() => {
      throw new LaunchError(
        `--resume-from-checkpoint ${args.resumeFromCheckpoint}: no ${TRAINER_STATE_FILE} there; point it at a checkpoint-N folder written by train.py`,
      );
    });
    if (state.includes(STATE_FORMAT)) {
      throw new LaunchError(
        `--resume-from-checkpoint ${args.resumeFromCheckpoint} is a cllama-train checkpoint; HF Trainer cannot resume its optimizer state. Continue its weights with --peft-path ${args.resumeFromCheckpoint} instead`,
      );
    }
  }
  if (args.validationFile)
    await fs.access(args.validationFile).catch(() => {
      throw new LaunchError(`--validation-file ${args.validationFile} cannot be read`);
    });
}

/** Writes one split's records (collator input before padding) as flat little-endian files. */
async function writeSplit(
  dir: string,
  split: string,
  source: BatchSource,
  withLabels: boolean,
): Promise<{ count: number; numTokens: number; minLength: number; maxLength: number; files: Record<string, string>; sha256: Record<string, string> }> {
  const files: Record<string, string> = {
    input_ids: `${split}_input_ids.bin`,
    offsets: `${split}_offsets.bin`,
    ...(withLabels ? { labels: `${split}_labels.bin` } : {}),
  };
  const handles = Object.fromEntries(await Promise.all(Object.entries(files).map(async ([k, f]) => [k, await fs.open(path.join(dir, f), 'wx')] as const)));
  const hashes = Object.fromEntries(Object.keys(files).map((k) => [k, createHash('sha256')]));
  const put = async (k: string, bytes: Uint8Array) => {
    hashes[k]!.update(bytes);
    let done = 0;
    while (done < bytes.length) done += (await handles[k]!.write(bytes, done, bytes.length - done)).bytesWritten;
  };
  let numTokens = 0;
  let minLength = Number.POSITIVE_INFINITY;
  let maxLength = 0;
  try {
    const off = new BigInt64Array(1);
    await put('offsets', new Uint8Array(off.buffer.slice(0)));
    for (let i = 0; i < source.length; i++) {
      const b = source.batch([i]); // one record: no padding, exactly what the collator receives
      await put('input_ids', new Uint8Array(b.inputIds.buffer, b.inputIds.byteOffset, b.inputIds.byteLength));
      if (withLabels) await put('labels', new Uint8Array(b.labels.buffer, b.labels.byteOffset, b.labels.byteLength));
      numTokens += b.seqLen;
      minLength = Math.min(minLength, b.seqLen);
      maxLength = Math.max(maxLength, b.seqLen);
      off[0] = BigInt(numTokens);
      await put('offsets', new Uint8Array(off.buffer.slice(0)));
    }
    for (const h of Object.values(handles)) await h.sync();
  } finally {
    for (const h of Object.values(handles)) await h.close();
  }
  return {
    count: source.length,
    numTokens,
    minLength: source.length === 0 ? 0 : minLength,
    maxLength,
    files,
    sha256: Object.fromEntries(Object.entries(hashes).map(([k, h]) => [k, h.digest('hex')])),
  };
}

async function copyTokenizer(src: string, dest: string): Promise<Array<{ name: string; sha256: string }>> {
  await fs.mkdir(dest);
  const st = await fs.stat(src);
  const pairs = st.isDirectory()
    ? (await fs.readdir(src)).filter((f) => TOKENIZER_FILES.includes(f)).map((f) => [path.join(src, f), f] as const)
    : [[src, 'tokenizer.model'] as const];
  const out: Array<{ name: string; sha256: string }> = [];
  for (const [from, name] of pairs) {
    await fs.copyFile(from, path.join(dest, name));
    out.push({ name, sha256: await sha256File(path.join(dest, name)) });
  }
  return out;
}

export interface EmitOptions {
  /** commander's parsed flags (camelCase), for the ignored Python-script flags' values and "given" flags. */
  rawFlags?: Record<string, unknown>;
  /** Other flags the user gave (e.g. a non-default --backend). */
  extraGiven?: Record<string, unknown>;
  /** The cllama-train command line, recorded in launch.json. */
  command?: string[];
  version?: string;
  /** Warnings (default: `cllama-train: <message>` on stderr, as a training run prints them). */
  onWarning?: (message: string) => void;
}

export interface EmitResult {
  dir: string;
  plan: LaunchPlan;
  summary: DataSummary;
}

/**
 * The flags with every path made absolute (resolved against this process's working directory): launch.sh,
 * launch.json and train.py then find the model, adapter and output folder wherever they are started.
 */
export function withAbsolutePaths(args: TrainArgs): TrainArgs {
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(p));
  return {
    ...args,
    modelNameOrPath: path.resolve(args.modelNameOrPath),
    tokenizerNameOrPath: path.resolve(args.tokenizerNameOrPath),
    datasetDir: path.resolve(args.datasetDir),
    outputDir: path.resolve(args.outputDir),
    dataCacheDir: abs(args.dataCacheDir),
    validationFile: abs(args.validationFile),
    peftPath: abs(args.peftPath),
    resumeFromCheckpoint: abs(args.resumeFromCheckpoint),
    emitLaunch: abs(args.emitLaunch),
  };
}

export async function emitLaunchFolder(given: TrainArgs, opts: EmitOptions = {}): Promise<EmitResult> {
  if (!given.emitLaunch) throw new LaunchError('--emit-launch <dir> is required here');
  const args = withAbsolutePaths(given);
  if (endianness() !== 'LE') throw new LaunchError('the exported token files are little-endian; this host is big-endian');
  const dir = args.emitLaunch!;
  const plan = buildLaunchPlan(args, opts.rawFlags, opts.extraGiven);
  await validate(args, dir);
  const template = await fs.readFile(trainPyTemplatePath(), 'utf8');
  const tok = await loadTokenizer(args.tokenizerNameOrPath).catch((err: Error) => {
    throw new LaunchError(`--tokenizer-name-or-path ${args.tokenizerNameOrPath}: ${err.message}`);
  });
  const sources = await sourceFiles(args);
  let summary: DataSummary | undefined;
  await writeFolderAtomic(dir, async (tmp) => {
    const dataDir = path.join(tmp, 'data');
    await fs.mkdir(dataDir);
    // our own cache (keyed by path, size, mtime, tokenizer); without --data-cache-dir a private one, dropped after
    const cacheRoot = args.dataCacheDir ?? path.join(tmp, '.cache');
    let prepared: PreparedData | undefined;
    try {
      prepared = await prepareTrainData(args, tok, cacheRoot);
      reportUntrained(prepared, args, opts.onWarning ?? ((m: string) => process.stderr.write(`cllama-train: ${m}\n`)));
      const withLabels = args.mode === 'sft';
      const train = await writeSplit(dataDir, 'train', prepared.train, withLabels);
      const evalSplit = prepared.eval ? await writeSplit(dataDir, 'eval', prepared.eval, withLabels) : undefined;
      const padId = tok.padId ?? 0;
      summary = {
        mode: args.mode,
        train: { count: train.count, numTokens: train.numTokens },
        eval: evalSplit ? { count: evalSplit.count, numTokens: evalSplit.numTokens } : undefined,
        vocabSize: tok.vocabSize,
        padId,
      };
      const tokenizerFiles = await copyTokenizer(args.tokenizerNameOrPath, path.join(tmp, 'tokenizer'));
      const splitMeta = (s: typeof train) => ({
        count: s.count,
        num_tokens: s.numTokens,
        min_length: s.minLength,
        max_length: s.maxLength,
        files: s.files,
        sha256: s.sha256,
      });
      const meta = {
        format: LAUNCH_DATA_FORMAT,
        mode: args.mode,
        dtype: { input_ids: 'int32-le', offsets: 'int64-le', labels: 'int32-le' },
        ignore_index: -100,
        pad_id: padId,
        labels: withLabels ? 'in <split>_labels.bin (-100 = not trained)' : 'the input ids (pre-training)',
        ...(args.mode === 'pretrain' ? { block_size: args.blockSize } : { max_seq_length: args.maxSeqLength }),
        split: args.validationFile
          ? { validation_file: path.basename(args.validationFile) }
          : { seed: args.seed, validation_split_percentage: args.validationSplitPercentage },
        tokenizer: {
          source: path.resolve(args.tokenizerNameOrPath),
          vocab_size: tok.vocabSize,
          bos_id: tok.bosId,
          eos_id: tok.eosId,
          pad_id: padId,
          files: tokenizerFiles,
        },
        sources: await Promise.all(sources.map(async (f) => ({ file: path.resolve(f), bytes: (await fs.stat(f)).size, sha256: await sha256File(f) }))),
        splits: { train: splitMeta(train), ...(evalSplit ? { eval: splitMeta(evalSplit) } : {}) },
      };
      await fs.writeFile(path.join(dataDir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    } finally {
      prepared?.close();
      if (!args.dataCacheDir) await fs.rm(cacheRoot, { recursive: true, force: true });
    }
    const launchJson = buildLaunchJson(args, plan, summary!, opts.command ?? null, opts.version ?? 'dev');
    const files: Record<string, string> = {
      'train.py': template,
      'launch.sh': launchScript(plan.trainPyArgs),
      'ds_zero2.json': `${JSON.stringify(deepSpeedZero2(), null, 2)}\n`,
      'requirements.txt': REQUIREMENTS,
      'README.md': readmeText(args, plan, summary!),
      'launch.json': `${JSON.stringify(launchJson, null, 2)}\n`,
    };
    for (const [name, text] of Object.entries(files)) {
      const h = await fs.open(path.join(tmp, name), 'wx', name.endsWith('.sh') || name.endsWith('.py') ? 0o755 : 0o644);
      await h.writeFile(text);
      await h.sync();
      await h.close();
    }
  });
  return { dir, plan, summary: summary! };
}
