import { promises as fs } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import cliProgress from 'cli-progress';
import { defineCommand, integerFlag, numberFlag, realTarget } from '@cllama/core';
import { TrainError } from '../train/errors.js';
import { trainSentencePiece, writeTrainedModel } from '../train/train.js';
import type { TrainProgress, TrainSentencePieceOptions } from '../train/train.js';

/** The parsed flags (numbers already checked by their flag parsers: a bad one is a usage error, exit 2). */
export interface TrainCommandOptions {
  input: string[];
  vocabSize: number;
  modelType: string;
  characterCoverage: number;
  out: string;
  byteFallback?: boolean;
  userDefinedSymbols?: string;
  controlSymbols?: string;
  maxSentenceLength?: number;
  inputSentenceSize?: number;
  seed?: number;
  splitDigits?: boolean;
  maxSentencepieceLength?: number;
  normalization?: string;
  threads?: number;
  progress?: boolean;
  force?: boolean;
}

/**
 * Lets unigram training collect garbage between its corpus-sized phases (peak memory 375 → 281 MB
 * on a 20K model): the CLI owns its process, so it may turn on V8's gc for it; the library never
 * does this inside a caller's process.
 */
function exposeGcForThisProcess(): void {
  const g = globalThis as { gc?: () => void };
  if (g.gc) return;
  try {
    v8.setFlagsFromString('--expose-gc');
    g.gc = vm.runInNewContext('gc') as () => void;
  } catch {
    // not available: training runs without the collections
  }
}

/** <prefix>.model / <prefix>.vocab: refused when they exist (unless --force) or are one of the inputs (always). Checked before training. */
async function checkTrainOutputs(prefix: string, inputs: string[], force: boolean): Promise<void> {
  const inputsReal = await Promise.all(inputs.map(realTarget));
  for (const out of [`${prefix}.model`, `${prefix}.vocab`]) {
    if (inputsReal.includes(await realTarget(out))) throw new TrainError(`--out ${prefix} would overwrite the input ${out}; choose another prefix`);
    if (
      !force &&
      (await fs.lstat(out).then(
        () => true,
        () => false,
      ))
    ) {
      throw new TrainError(`${out} exists; pass --force to replace it, or choose another --out prefix`);
    }
  }
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').filter((s) => s.length > 0);
}

/** `cllama-tokenizer train`: spm_train's job, writing <out>.model and <out>.vocab. */
export async function runTrain(opts: TrainCommandOptions, print: (line: string) => void = console.log): Promise<void> {
  await checkTrainOutputs(opts.out, opts.input, opts.force === true);
  const showBar = opts.progress !== false && process.stderr.isTTY === true;
  const bar = showBar
    ? new cliProgress.SingleBar(
        { format: '{stage} [{bar}] {percentage}% | {detail} | ETA {eta_formatted}', stream: process.stderr, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let stage = '';
  const onProgress = (e: TrainProgress): void => {
    if (!bar) return;
    if (e.stage === 'read') {
      if (stage !== 'read') bar.start(Math.max(1, e.bytesTotal), 0, { stage: 'reading', detail: '' });
      stage = 'read';
      bar.update(e.bytesRead, { detail: `${e.linesRead.toLocaleString()} sentences read` });
      return;
    }
    if (e.stage === 'done') {
      bar.stop();
      return;
    }
    if (stage === 'read' || stage === '') {
      bar.stop();
      bar.start(e.target, 0, { stage: 'training', detail: '' });
    }
    stage = e.stage;
    // BPE grows towards the target; unigram shrinks from the seed size towards it.
    bar.update(Math.min(e.pieces, e.target), { stage: e.stage, detail: `${e.pieces.toLocaleString()} pieces` });
  };
  const options: TrainSentencePieceOptions = {
    input: opts.input,
    vocabSize: opts.vocabSize,
    modelType: opts.modelType as 'bpe' | 'unigram',
    characterCoverage: opts.characterCoverage,
    byteFallback: opts.byteFallback ?? false,
    userDefinedSymbols: list(opts.userDefinedSymbols),
    controlSymbols: list(opts.controlSymbols),
    maxSentenceLength: opts.maxSentenceLength,
    inputSentenceSize: opts.inputSentenceSize,
    seed: opts.seed,
    splitDigits: opts.splitDigits ?? false,
    maxSentencepieceLength: opts.maxSentencepieceLength,
    normalizationRuleName: (opts.normalization ?? 'nmt_nfkc') as 'nmt_nfkc',
    threads: opts.threads,
    modelPrefix: opts.out,
    onProgress,
  };
  let result: Awaited<ReturnType<typeof trainSentencePiece>>;
  try {
    exposeGcForThisProcess();
    result = await trainSentencePiece(options);
  } finally {
    bar?.stop();
  }
  const { modelPath, vocabPath } = await writeTrainedModel(opts.out, result);
  const s = result.stats;
  print(
    `trained ${opts.modelType} vocabulary of ${result.model.pieces.length} pieces from ${s.sentences.toLocaleString()} sentences ` +
      `(${s.alphabetSize} characters, coverage ${s.characterCoverage.toFixed(4)}) in ${s.seconds.toFixed(1)} s → ${modelPath}, ${vocabPath}`,
  );
}

/** Digits only ('1e99', '1e3', '0x10' and '' are not integers here); ranges are the trainer's to check. */
const int = (flag: string) => ({ type: 'string', valueHint: 'n', parse: integerFlag(flag) }) as const;

export const trainCommand = defineCommand<TrainCommandOptions>({
  meta: {
    name: 'train',
    description: 'train a SentencePiece BPE or unigram vocabulary (like spm_train); writes <out>.model and <out>.vocab',
    example: 'cllama-tokenizer train --input zh_train.txt --vocab-size 20000 --out zh_sp',
  },
  args: {
    input: {
      type: 'string',
      valueHint: 'file',
      description: 'training text, one sentence per line (repeat for several files)',
      required: true,
      repeatable: true,
    },
    'vocab-size': { ...int('--vocab-size'), description: 'vocabulary size, meta pieces included', required: true },
    'model-type': { type: 'string', valueHint: 'type', description: 'bpe or unigram', default: 'unigram' },
    'character-coverage': {
      type: 'string',
      valueHint: 'c',
      description: 'fraction of characters covered by the alphabet (rest → <unk>)',
      parse: numberFlag('--character-coverage'),
      default: 0.9995,
    },
    out: { type: 'string', valueHint: 'prefix', description: 'output prefix: writes <prefix>.model and <prefix>.vocab', required: true },
    'byte-fallback': { type: 'boolean', description: 'add <0x00>…<0xFF> pieces; unknown characters become UTF-8 bytes' },
    'user-defined-symbols': { type: 'string', valueHint: 'list', description: 'comma-separated pieces kept whole' },
    'control-symbols': { type: 'string', valueHint: 'list', description: 'comma-separated control pieces' },
    'max-sentence-length': { ...int('--max-sentence-length'), valueHint: 'bytes', description: 'skip longer lines', default: 4192 },
    'input-sentence-size': { ...int('--input-sentence-size'), description: 'sample this many lines (0 = all)', default: 0 },
    seed: { ...int('--seed'), description: 'random seed of the sampling', default: 12345678 },
    'split-digits': { type: 'boolean', description: 'split every digit into its own piece' },
    'max-sentencepiece-length': { ...int('--max-sentencepiece-length'), description: 'longest piece in characters', default: 16 },
    normalization: { type: 'string', valueHint: 'rule', description: 'nmt_nfkc or identity', default: 'nmt_nfkc' },
    threads: { ...int('--threads'), description: 'worker threads for unigram EM', default: 2 },
    'no-progress': { type: 'boolean', description: 'no progress bar' },
    force: { type: 'boolean', description: 'replace existing <prefix>.model / <prefix>.vocab' },
  },
  run: ({ args }) => runTrain(args),
});
