/**
 * Training data for the two commands.
 *
 * Pre-training (run_clm_pt_with_peft.py): every `.txt` file of --dataset-dir, line by line → blocks of
 * --block-size tokens (@cllama/alpaca-data buildPretrainBlocks), cached on disk in @cllama/alpaca-data's
 * tokenized-dataset format under --data-cache-dir, keyed by the files, the tokenizer and the block size,
 * so a second run skips tokenization. Records are read on demand (streaming; memory ∝ batch).
 *
 * SFT (build_dataset.py): every `.json` / `.jsonl` file of --dataset-dir (Alpaca records, read as a
 * stream) → buildSftExample with --max-seq-length, cached the same way (with the label masks);
 * --validation-file gives the eval set (cached too).
 *
 * Without a separate eval file, --validation-split-percentage of the examples (seeded random choice,
 * like datasets' train_test_split) is held out.
 *
 * SFT examples whose prompt fills --max-seq-length keep no trained token after truncation (every label
 * −100): they add nothing to the loss, and if every example is like that the run would train on a loss
 * of 0 and save an unchanged adapter. prepareSftData counts them (one pass over the labels, a record at
 * a time, on a cache hit too) and refuses a training set with no trained token at all; the session warns
 * about a partial count. HF's Trainer has no such check (torch's mean over no tokens is NaN there).
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import {
  AlpacaDataError,
  IGNORE_INDEX,
  buildPretrainBlocks,
  buildSftExample,
  collate,
  openTokenizedDataset,
  readAlpacaRecords,
  writeTokenizedDataset,
  type TokenizedDataset,
  type TokenizedDatasetInfo,
  type TokenizedRecordInput,
} from '@cllama/alpaca-data';
import type { Tokenizer } from '@cllama/tokenizer-merge';
import type { Batch, BatchSource } from './micro-batch.js';
import type { TrainArgs } from './options.js';
import { Xoshiro128 } from '@cllama/core';
import { TrainerError } from '../errors.js';

export class TrainDataError extends TrainerError {
  override name = 'TrainDataError';
}

interface RecordStore {
  readonly length: number;
  get(i: number): { inputIds: ArrayLike<number>; labels?: ArrayLike<number> };
}

/** A view of some records of a store (a split), collated with right padding. */
export class IndexedBatchSource implements BatchSource {
  constructor(
    private readonly store: RecordStore,
    private readonly indices: Uint32Array,
    private readonly padId: number,
  ) {}

  get length(): number {
    return this.indices.length;
  }

  batch(positions: ArrayLike<number>): Batch {
    const records = Array.from(positions, (p) => this.store.get(this.indices[p]!));
    const b = collate(records, this.padId);
    return { inputIds: b.inputIds, labels: b.labels, batch: b.batch, seqLen: b.seqLen };
  }
}

/**
 * The order in which an epoch visits the training examples. Derived from (seed, epoch) alone, so a
 * resumed run only needs the epoch number and the position within it — the same scheme as HF's
 * RandomSampler seeded per epoch (but not torch's generator: a --seed gives the same order on every
 * run of this trainer, not PyTorch's order).
 */
export function epochOrder(seed: number, epoch: number, length: number, shuffle = true): Uint32Array {
  if (!shuffle) return Uint32Array.from({ length }, (_, i) => i);
  return Xoshiro128.fromSeed(seed, epoch).permutation(length);
}

/** Splits 0..n-1 into (train, eval): `percent`% held out, chosen by a seeded shuffle. */
export function splitIndices(n: number, percent: number, seed: number): { train: Uint32Array; eval: Uint32Array } {
  const evalCount = percent > 0 ? Math.min(n - 1, Math.max(1, Math.ceil((n * percent) / 100))) : 0;
  if (evalCount <= 0) return { train: Uint32Array.from({ length: n }, (_, i) => i), eval: new Uint32Array(0) };
  const perm = Xoshiro128.fromSeed(seed, 0x5b117).permutation(n);
  const evalIdx = perm.slice(0, evalCount).sort();
  const trainIdx = perm.slice(evalCount).sort();
  return { train: trainIdx, eval: evalIdx };
}

/** The dataset files of `dir` with these extensions, sorted; a missing folder or none of them is an error. */
export async function listFiles(dir: string, ...exts: string[]): Promise<string[]> {
  const what = exts.join(' / ');
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    throw new TrainDataError(`--dataset-dir ${dir} cannot be read; give a folder of ${what} files`);
  }
  const files = entries
    .filter((f) => exts.some((e) => f.endsWith(e)))
    .sort()
    .map((f) => path.join(dir, f));
  if (files.length === 0) throw new TrainDataError(`--dataset-dir ${dir} has no ${what} files`);
  return files;
}

async function* readLines(files: string[]): AsyncGenerator<string> {
  for (const file of files) {
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of rl) yield line;
  }
}

async function cacheKey(files: string[], tok: Tokenizer, extra: Record<string, unknown>): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) {
    const st = await fs.stat(f);
    h.update(`${path.resolve(f)}\0${st.size}\0${st.mtimeMs}\0`);
  }
  // the tokenizer's identity: size, special ids and a sample of its pieces
  h.update(
    JSON.stringify({
      v: tok.vocabSize,
      b: tok.bosId,
      e: tok.eosId,
      sample: [0, 1, 2, 1000, tok.vocabSize - 1].map((i) => (i < tok.vocabSize ? tok.idToPiece(i) : '')),
      ...extra,
    }),
  );
  return h.digest('hex').slice(0, 16);
}

export interface PreparedData {
  train: BatchSource;
  eval: BatchSource | undefined;
  /** SFT: examples with no trained token left after truncation, per split. */
  untrained?: { train: number; eval: number };
  /** Where the tokenized cache is (pre-training). */
  cacheDir?: string;
  /** True when the cache was reused. */
  cacheHit?: boolean;
  close(): void;
}

/**
 * The tokenized dataset at `dir`: opened when it exists (a cache hit), else written from `records`
 * (streamed; @cllama/alpaca-data writes it atomically) and opened.
 */
async function cachedDataset(
  dir: string,
  records: () => AsyncIterable<TokenizedRecordInput>,
  info: TokenizedDatasetInfo,
): Promise<{ ds: TokenizedDataset; hit: boolean }> {
  try {
    return { ds: await openTokenizedDataset(dir), hit: true };
  } catch {
    // not cached yet
  }
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await writeTokenizedDataset(dir, records(), info);
  return { ds: await openTokenizedDataset(dir), hit: false };
}

export async function preparePretrainData(
  opts: { datasetDir: string; cacheRoot: string; blockSize: number; validationSplitPercentage: number; seed: number },
  tok: Tokenizer,
): Promise<PreparedData> {
  const files = await listFiles(opts.datasetDir, '.txt');
  const key = await cacheKey(files, tok, { blockSize: opts.blockSize, kind: 'pt' });
  const cacheDir = path.join(opts.cacheRoot, `pt_block${opts.blockSize}_${key}`);
  async function* records() {
    for await (const b of buildPretrainBlocks(readLines(files), tok, opts.blockSize)) yield { inputIds: b };
  }
  const { ds, hit: cacheHit } = await cachedDataset(cacheDir, records, {
    kind: 'pt',
    blockSize: opts.blockSize,
    files: files.map((f) => path.basename(f)),
    tokenizerVocabSize: tok.vocabSize,
  });
  if (ds.length === 0) {
    throw new TrainDataError(`${opts.datasetDir} gives no complete block of ${opts.blockSize} tokens; add text or lower --block-size`);
  }
  const split = splitIndices(ds.length, opts.validationSplitPercentage, opts.seed);
  const pad = tok.padId ?? 0;
  return {
    train: new IndexedBatchSource(ds, split.train, pad),
    eval: split.eval.length > 0 ? new IndexedBatchSource(ds, split.eval, pad) : undefined,
    cacheDir,
    cacheHit,
    close: () => ds.close(),
  };
}

/**
 * The SFT examples of `files` as a tokenized dataset under `cacheRoot`: opened when a cache for these
 * files, tokenizer and length exists, else built by streaming the records (memory ∝ one record).
 */
async function sftDataset(
  files: string[],
  cacheRoot: string,
  name: string,
  maxSeqLength: number,
  tok: Tokenizer,
): Promise<{ ds: TokenizedDataset; hit: boolean }> {
  const key = await cacheKey(files, tok, { maxSeqLength, kind: 'sft' });
  const dir = path.join(cacheRoot, `${name}_len${maxSeqLength}_${key}`);
  async function* examples() {
    for (const file of files) {
      try {
        for await (const { record } of readAlpacaRecords(file, { strict: true })) yield buildSftExample(record, tok, { maxSeqLength });
      } catch (err) {
        if (err instanceof AlpacaDataError) throw new TrainDataError(`${err.message} (expected a JSON array or JSON lines of {instruction, input, output})`);
        throw err;
      }
    }
  }
  return cachedDataset(dir, examples, { kind: 'sft', maxSeqLength, files: files.map((f) => path.basename(f)), tokenizerVocabSize: tok.vocabSize });
}

/**
 * How many of `indices` have no trained token: every label after the first is −100 (the loss predicts
 * token t + 1 from t, so the first label is never counted). Reads one record at a time.
 */
export function countUntrained(ds: RecordStore, indices: ArrayLike<number>): number {
  let n = 0;
  for (let k = 0; k < indices.length; k++) {
    const labels = ds.get(indices[k]!).labels;
    let trained = false;
    for (let t = 1; t < (labels?.length ?? 0) && !trained; t++) trained = labels![t] !== IGNORE_INDEX;
    if (!trained) n += 1;
  }
  return n;
}

export class NoTrainedTokensError extends TrainDataError {
  override name = 'NoTrainedTokensError';
}

/** The refusal when no example of a split keeps a trained token. */
export function noTrainedTokensMessage(split: 'training' | 'evaluation', count: number, maxSeqLength: number): string {
  return `all ${count} ${split} examples have no trained token after truncation to --max-seq-length ${maxSeqLength} (the prompt fills each one), so the loss would be 0 and nothing learned: raise --max-seq-length or shorten the prompts`;
}

/** The warning when some (not all) examples of a split lose every trained token. */
export function someUntrainedMessage(split: 'training' | 'evaluation', untrained: number, count: number, maxSeqLength: number): string {
  return `warning: ${untrained} of ${count} ${split} examples have no trained token after truncation to --max-seq-length ${maxSeqLength} (the prompt fills them) and add nothing to the loss: raise --max-seq-length or shorten those prompts`;
}

/** Refuses a training split in which no example keeps a trained token; returns the per-split counts. */
function checkTrainedTokens(
  train: { ds: RecordStore; indices: Uint32Array },
  evalSplit: { ds: RecordStore; indices: Uint32Array } | undefined,
  maxSeqLength: number,
): { train: number; eval: number } {
  const counts = { train: countUntrained(train.ds, train.indices), eval: evalSplit ? countUntrained(evalSplit.ds, evalSplit.indices) : 0 };
  if (counts.train === train.indices.length) throw new NoTrainedTokensError(noTrainedTokensMessage('training', counts.train, maxSeqLength));
  return counts;
}

export async function prepareSftData(
  opts: { datasetDir: string; cacheRoot: string; validationFile?: string; maxSeqLength: number; validationSplitPercentage: number; seed: number },
  tok: Tokenizer,
): Promise<PreparedData> {
  const files = await listFiles(opts.datasetDir, '.json', '.jsonl');
  const train = await sftDataset(files, opts.cacheRoot, 'sft', opts.maxSeqLength, tok);
  const pad = tok.padId ?? 0;
  const all = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);
  if (train.ds.length === 0) {
    train.ds.close();
    throw new TrainDataError(`${opts.datasetDir} holds no Alpaca records`);
  }
  if (opts.validationFile) {
    const evalSet = await sftDataset([opts.validationFile], opts.cacheRoot, 'sft_eval', opts.maxSeqLength, tok).catch((err: unknown) => {
      train.ds.close();
      throw err;
    });
    let untrained: { train: number; eval: number };
    try {
      untrained = checkTrainedTokens({ ds: train.ds, indices: all(train.ds.length) }, { ds: evalSet.ds, indices: all(evalSet.ds.length) }, opts.maxSeqLength);
    } catch (err) {
      train.ds.close();
      evalSet.ds.close();
      throw err;
    }
    return {
      train: new IndexedBatchSource(train.ds, all(train.ds.length), pad),
      eval: evalSet.ds.length > 0 ? new IndexedBatchSource(evalSet.ds, all(evalSet.ds.length), pad) : undefined,
      untrained,
      cacheHit: train.hit && evalSet.hit,
      close: () => {
        train.ds.close();
        evalSet.ds.close();
      },
    };
  }
  const split = splitIndices(train.ds.length, opts.validationSplitPercentage, opts.seed);
  let untrained: { train: number; eval: number };
  try {
    untrained = checkTrainedTokens({ ds: train.ds, indices: split.train }, { ds: train.ds, indices: split.eval }, opts.maxSeqLength);
  } catch (err) {
    train.ds.close();
    throw err;
  }
  return {
    train: new IndexedBatchSource(train.ds, split.train, pad),
    eval: split.eval.length > 0 ? new IndexedBatchSource(train.ds, split.eval, pad) : undefined,
    untrained,
    cacheHit: train.hit,
    close: () => train.ds.close(),
  };
}

/**
 * The run's data as `cllama-train pretrain|sft` trains on it: pre-training blocks or SFT examples from
 * --dataset-dir, tokenized into the cache under `cacheRoot`, split by --validation-file or the seeded
 * --validation-split-percentage. The training session and the launch folder (launch/emit.ts) both read
 * their data through here, so the two see the same records. Refuses --do-eval without evaluation data.
 */
export async function prepareTrainData(
  args: Pick<TrainArgs, 'mode' | 'datasetDir' | 'blockSize' | 'maxSeqLength' | 'validationFile' | 'validationSplitPercentage' | 'seed' | 'doEval'>,
  tok: Tokenizer,
  cacheRoot: string,
): Promise<PreparedData> {
  const { datasetDir, validationSplitPercentage, seed } = args;
  const data =
    args.mode === 'pretrain'
      ? await preparePretrainData({ datasetDir, cacheRoot, blockSize: args.blockSize, validationSplitPercentage, seed }, tok)
      : await prepareSftData(
          { datasetDir, cacheRoot, validationFile: args.validationFile, maxSeqLength: args.maxSeqLength, validationSplitPercentage, seed },
          tok,
        );
  if (args.doEval && !data.eval) {
    data.close();
    throw new TrainDataError('--do-eval needs evaluation data: give --validation-file (sft) or a --validation-split-percentage above 0');
  }
  return data;
}

/**
 * SFT examples truncated to their prompt: a warning per split that has some, a refusal when every
 * evaluation example has none (no training split without a trained token gets here: prepareSftData refuses it). Training
 * (train/session.ts) and --emit-launch (launch/emit.ts) both report through this.
 */
export function reportUntrained(data: PreparedData, args: Pick<TrainArgs, 'doEval' | 'maxSeqLength'>, warn: (message: string) => void): void {
  if (!data.untrained) return;
  const { train: untrainedTrain, eval: untrainedEval } = data.untrained;
  if (untrainedTrain > 0) warn(someUntrainedMessage('training', untrainedTrain, data.train.length, args.maxSeqLength));
  if (args.doEval && data.eval && untrainedEval === data.eval.length)
    throw new NoTrainedTokensError(noTrainedTokensMessage('evaluation', untrainedEval, args.maxSeqLength));
  if (args.doEval && untrainedEval > 0) warn(someUntrainedMessage('evaluation', untrainedEval, data.eval!.length, args.maxSeqLength));
}
