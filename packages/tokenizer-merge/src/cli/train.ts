import { promises as fs } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { parseWholeNumber, realTarget } from '@cllama/core';
import { TrainError } from '../train/errors.js';
import { trainSentencePiece, writeTrainedModel } from '../train/train.js';
import type { TrainProgress, TrainSentencePieceOptions } from '../train/train.js';

export interface TrainCommandOptions {
  input: string[];
  vocabSize: string;
  modelType: string;
  characterCoverage: string;
  out: string;
  byteFallback?: boolean;
  userDefinedSymbols?: string;
  controlSymbols?: string;
  maxSentenceLength?: string;
  inputSentenceSize?: string;
  seed?: string;
  splitDigits?: boolean;
  maxSentencepieceLength?: string;
  normalization?: string;
  threads?: string;
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

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = parseWholeNumber(v); // digits only: '1e99', '1e3', '0x10' and '' are not integers here
  if (Number.isNaN(n)) throw new TrainError(`${name} must be an integer (got '${v}')`);
  return n;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').filter((s) => s.length > 0);
}

/** `cllama-tokenizer train`: spm_train's job, writing <out>.model and <out>.vocab. */
export async function runTrain(opts: TrainCommandOptions, print: (line: string) => void = console.log): Promise<void> {
  await checkTrainOutputs(opts.out, opts.input, opts.force === true);
  const coverage = opts.characterCoverage.trim() === '' ? Number.NaN : Number(opts.characterCoverage);
  if (!Number.isFinite(coverage)) throw new TrainError(`--character-coverage must be a number (got '${opts.characterCoverage}')`);
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
    vocabSize: int('--vocab-size', opts.vocabSize)!,
    modelType: opts.modelType as 'bpe' | 'unigram',
    characterCoverage: coverage,
    byteFallback: opts.byteFallback ?? false,
    userDefinedSymbols: list(opts.userDefinedSymbols),
    controlSymbols: list(opts.controlSymbols),
    maxSentenceLength: int('--max-sentence-length', opts.maxSentenceLength),
    inputSentenceSize: int('--input-sentence-size', opts.inputSentenceSize),
    seed: int('--seed', opts.seed),
    splitDigits: opts.splitDigits ?? false,
    maxSentencepieceLength: int('--max-sentencepiece-length', opts.maxSentencepieceLength),
    normalizationRuleName: (opts.normalization ?? 'nmt_nfkc') as 'nmt_nfkc',
    threads: int('--threads', opts.threads),
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

export function register(program: Command): void {
  program
    .command('train')
    .description('train a SentencePiece BPE or unigram vocabulary (like spm_train); writes <out>.model and <out>.vocab')
    .requiredOption('--input <file>', 'training text, one sentence per line (repeat for several files)', (v: string, prev: string[] = []) => [...prev, v])
    .requiredOption('--vocab-size <n>', 'vocabulary size, meta pieces included')
    .option('--model-type <type>', 'bpe or unigram', 'unigram')
    .option('--character-coverage <c>', 'fraction of characters covered by the alphabet (rest → <unk>)', '0.9995')
    .requiredOption('--out <prefix>', 'output prefix: writes <prefix>.model and <prefix>.vocab')
    .option('--byte-fallback', 'add <0x00>…<0xFF> pieces; unknown characters become UTF-8 bytes')
    .option('--user-defined-symbols <list>', 'comma-separated pieces kept whole')
    .option('--control-symbols <list>', 'comma-separated control pieces')
    .option('--max-sentence-length <bytes>', 'skip longer lines', '4192')
    .option('--input-sentence-size <n>', 'sample this many lines (0 = all)', '0')
    .option('--seed <n>', 'random seed of the sampling', '12345678')
    .option('--split-digits', 'split every digit into its own piece')
    .option('--max-sentencepiece-length <n>', 'longest piece in characters', '16')
    .option('--normalization <rule>', 'nmt_nfkc or identity', 'nmt_nfkc')
    .option('--threads <n>', 'worker threads for unigram EM', '2')
    .option('--no-progress', 'no progress bar')
    .option('--force', 'replace existing <prefix>.model / <prefix>.vocab')
    .action(async (o: TrainCommandOptions) => {
      await runTrain(o);
    });
}
