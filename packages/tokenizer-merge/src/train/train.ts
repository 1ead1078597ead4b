/**
 * trainSentencePiece: SentencePiece-compatible vocabulary training (spm_train) in TypeScript.
 * Reads and prepares the corpus (./corpus.ts), runs the BPE (./bpe.ts) or unigram (./unigram.ts)
 * trainer, and builds the ModelProto exactly as TrainerInterface::Serialize lays it out: meta pieces
 * at their ids (<unk> 0, <s> 1, </s> 2, then control, user-defined and byte pieces), then the trained
 * pieces; trainer_spec and normalizer_spec filled in as spm_train fills them.
 */
import { AtomicFileWriter, CllamaError } from '@cllama/core';
import { ModelType, PieceType, createPiece, serializeModelProto } from '../proto.js';
import type { ModelProto, NormalizerSpec, SentencePiece, TrainerSpec } from '../proto.js';
import { trainBpe } from './bpe.js';
import { buildAlphabet, concatSentences, countWords, loadSentences } from './corpus.js';
import { TrainError } from './errors.js';
import { nmtNfkcCharsmap } from './nmt-nfkc-charsmap.js';
import { Normalizer } from './normalizer.js';
import { isValidPiece, type PieceRules } from './script.js';
import { trainUnigram } from './unigram.js';
import { formatVocab } from './vocab-file.js';

export interface TrainSentencePieceOptions {
  /** Text files, one sentence per line. */
  input: string | string[];
  vocabSize: number;
  /** Default 'unigram' (as spm_train). */
  modelType?: 'bpe' | 'unigram';
  /** Fraction of characters the alphabet must cover; the rest become <unk>. Default 0.9995. */
  characterCoverage?: number;
  /** Add the 256 <0xNN> byte pieces so unknown characters are encoded as UTF-8 bytes. */
  byteFallback?: boolean;
  /** Pieces always kept whole (never split, never normalized apart). */
  userDefinedSymbols?: string[];
  /** Pieces that only appear as ids (like <s>), never in text. */
  controlSymbols?: string[];
  /** Lines longer than this many bytes are skipped. Default 4192. */
  maxSentenceLength?: number;
  /** Sample this many lines (0 = use all). Default 0. */
  inputSentenceSize?: number;
  /** Sample randomly (reservoir) rather than take the first lines. Default true. */
  shuffleInputSentence?: boolean;
  /** Seed of the sampling. Default 12345678 (spm_train's). */
  seed?: number;
  /** Split all digits 0-9 into separate pieces. Default false. */
  splitDigits?: boolean;
  splitByWhitespace?: boolean;
  splitByUnicodeScript?: boolean;
  splitByNumber?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  allowWhitespaceOnlyPieces?: boolean;
  /** Default 16. */
  maxSentencepieceLength?: number;
  /** Unigram: seed pieces kept from the frequent substrings. Default 1,000,000. */
  seedSentencepieceSize?: number;
  /** Unigram: fraction kept by each pruning step. Default 0.75. */
  shrinkingFactor?: number;
  /** Unigram: EM iterations between prunings. Default 2. */
  numSubIterations?: number;
  /** 'nmt_nfkc' (default) or 'identity'. */
  normalizationRuleName?: 'nmt_nfkc' | 'identity';
  addDummyPrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  /** Recorded in trainer_spec.num_threads. */
  threads?: number;
  /** Recorded in trainer_spec.model_prefix. */
  modelPrefix?: string;
  onProgress?: (event: TrainProgress) => void;
}

export interface TrainProgress {
  stage: 'read' | 'prepare' | 'seed' | 'em' | 'prune' | 'merge' | 'done';
  linesRead: number;
  bytesRead: number;
  bytesTotal: number;
  /** Pieces so far (BPE: merged pieces; unigram: current model size). */
  pieces: number;
  /** Target number of trained pieces. */
  target: number;
}

export interface TrainStats {
  linesRead: number;
  sentences: number;
  tooLongLines: number;
  words: number;
  alphabetSize: number;
  characterCoverage: number;
  seedPieces?: number;
  emRounds?: number;
  seconds: number;
}

export interface TrainResult {
  model: ModelProto;
  /** The .vocab text (piece<TAB>score per line). */
  vocab: string;
  stats: TrainStats;
}

interface ResolvedSpec extends Required<Omit<TrainSentencePieceOptions, 'onProgress' | 'input' | 'modelPrefix'>> {
  input: string[];
  modelPrefix: string;
}

const UNK_PIECE = '<unk>';
const BOS_PIECE = '<s>';
const EOS_PIECE = '</s>';
const PAD_PIECE = '<pad>';

function resolve(opts: TrainSentencePieceOptions): ResolvedSpec {
  const input = typeof opts.input === 'string' ? [opts.input] : [...(opts.input ?? [])];
  if (input.length === 0) throw new TrainError('no input file given; pass at least one text file (--input <file>)');
  const spec: ResolvedSpec = {
    input,
    vocabSize: opts.vocabSize,
    modelType: opts.modelType ?? 'unigram',
    characterCoverage: opts.characterCoverage ?? 0.9995,
    byteFallback: opts.byteFallback ?? false,
    userDefinedSymbols: opts.userDefinedSymbols ?? [],
    controlSymbols: opts.controlSymbols ?? [],
    maxSentenceLength: opts.maxSentenceLength ?? 4192,
    inputSentenceSize: opts.inputSentenceSize ?? 0,
    shuffleInputSentence: opts.shuffleInputSentence ?? true,
    seed: opts.seed ?? 12345678,
    splitDigits: opts.splitDigits ?? false,
    splitByWhitespace: opts.splitByWhitespace ?? true,
    splitByUnicodeScript: opts.splitByUnicodeScript ?? true,
    splitByNumber: opts.splitByNumber ?? true,
    treatWhitespaceAsSuffix: opts.treatWhitespaceAsSuffix ?? false,
    allowWhitespaceOnlyPieces: opts.allowWhitespaceOnlyPieces ?? false,
    maxSentencepieceLength: opts.maxSentencepieceLength ?? 16,
    seedSentencepieceSize: opts.seedSentencepieceSize ?? 1_000_000,
    shrinkingFactor: opts.shrinkingFactor ?? 0.75,
    numSubIterations: opts.numSubIterations ?? 2,
    normalizationRuleName: opts.normalizationRuleName ?? 'nmt_nfkc',
    addDummyPrefix: opts.addDummyPrefix ?? true,
    removeExtraWhitespaces: opts.removeExtraWhitespaces ?? true,
    threads: opts.threads ?? 1,
    modelPrefix: opts.modelPrefix ?? '',
  };
  const range = (name: string, v: number, lo: number, hi: number, hint: string): void => {
    if (!Number.isFinite(v) || v < lo || v > hi) throw new TrainError(`${name} must be in [${lo}, ${hi}] (got ${v}); ${hint}`);
  };
  if (!Number.isInteger(spec.vocabSize) || spec.vocabSize <= 0) {
    throw new TrainError(`vocabulary size must be a positive integer (got ${spec.vocabSize}); pass e.g. --vocab-size 8000`);
  }
  if (spec.modelType !== 'bpe' && spec.modelType !== 'unigram') {
    throw new TrainError(`model type must be 'bpe' or 'unigram' (got '${String(spec.modelType)}')`);
  }
  range('character coverage', spec.characterCoverage, 0.98, 1, 'use 0.9995 for Chinese/Japanese, 1.0 for small alphabets');
  range('max sentencepiece length', spec.maxSentencepieceLength, 1, 512, 'the default is 16');
  range('num sub iterations', spec.numSubIterations, 1, 10, 'the default is 2');
  range('shrinking factor', spec.shrinkingFactor, 0.5, 0.95, 'the default is 0.75');
  range('max sentence length', spec.maxSentenceLength, 10, 1073741824, 'the default is 4192 bytes');
  if (spec.inputSentenceSize > 0 && spec.inputSentenceSize <= 100) {
    throw new TrainError(`input sentence size must be 0 (all) or more than 100 (got ${spec.inputSentenceSize})`);
  }
  if (spec.normalizationRuleName !== 'nmt_nfkc' && spec.normalizationRuleName !== 'identity') {
    throw new TrainError(`normalization rule must be 'nmt_nfkc' or 'identity' (got '${String(spec.normalizationRuleName)}')`);
  }
  return spec;
}

/** Meta pieces by id, as TrainerInterface::InitMetaPieces assigns them. */
function metaPieces(spec: ResolvedSpec): Map<number, [string, number]> {
  const meta = new Map<number, [string, number]>();
  meta.set(0, [UNK_PIECE, PieceType.UNKNOWN]);
  meta.set(1, [BOS_PIECE, PieceType.CONTROL]);
  meta.set(2, [EOS_PIECE, PieceType.CONTROL]);
  const seen = new Set<string>();
  let id = 0;
  const insert = (w: string, type: number): void => {
    if (w.length === 0) throw new TrainError('empty strings are not allowed as control or user-defined symbols');
    if (seen.has(w)) throw new TrainError(`${w} is already defined; duplicated symbols are not allowed`);
    seen.add(w);
    if (w === UNK_PIECE) throw new TrainError(`${UNK_PIECE} must not be defined with control or user-defined symbols`);
    if (w === BOS_PIECE) return void meta.set(1, [w, type]);
    if (w === EOS_PIECE) return void meta.set(2, [w, type]);
    while (meta.has(id)) id++;
    meta.set(id, [w, type]);
  };
  for (const w of spec.controlSymbols) insert(w, PieceType.CONTROL);
  for (const w of spec.userDefinedSymbols) insert(w, PieceType.USER_DEFINED);
  if (spec.byteFallback) {
    for (let i = 0; i < 256; i++) insert(`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`, PieceType.BYTE);
  }
  return meta;
}

export async function trainSentencePiece(options: TrainSentencePieceOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const spec = resolve(options);
  const meta = metaPieces(spec);
  if (meta.size >= spec.vocabSize) {
    throw new TrainError(
      `vocabulary size ${spec.vocabSize} leaves no room beyond the ${meta.size} meta pieces (<unk>, <s>, </s>, symbols, bytes); increase --vocab-size`,
    );
  }
  const progress = (e: Partial<TrainProgress> & { stage: TrainProgress['stage'] }): void => {
    options.onProgress?.({ linesRead: 0, bytesRead: 0, bytesTotal: 0, pieces: 0, target: spec.vocabSize, ...last, ...e });
    last = { ...last, ...e };
  };
  let last: Partial<TrainProgress> = {};

  const charsmap = spec.normalizationRuleName === 'nmt_nfkc' ? nmtNfkcCharsmap() : new Uint8Array(0);
  const normalizer = new Normalizer({
    charsmap,
    addDummyPrefix: spec.addDummyPrefix,
    removeExtraWhitespaces: spec.removeExtraWhitespaces,
    escapeWhitespaces: true,
    treatWhitespaceAsSuffix: spec.treatWhitespaceAsSuffix,
  });
  const loaded = await loadSentences(spec.input, {
    maxSentenceLength: spec.maxSentenceLength,
    inputSentenceSize: spec.inputSentenceSize,
    shuffleInputSentence: spec.shuffleInputSentence,
    seed: spec.seed,
    normalizer,
    metaPieces: [...meta.values()].map(([w]) => w),
    onProgress: (linesRead, bytesRead, bytesTotal) => progress({ stage: 'read', linesRead, bytesRead, bytesTotal }),
  });
  if (loaded.sentences.length === 0) {
    throw new TrainError(
      `the input has no usable sentences (${loaded.linesRead} lines read, ${loaded.tooLongLines} longer than ${spec.maxSentenceLength} bytes); pass a non-empty text file with one sentence per line`,
    );
  }
  progress({ stage: 'prepare' });
  const alphabet = buildAlphabet(loaded.sentences, spec.characterCoverage, '');
  if (alphabet.chars.length + meta.size > spec.vocabSize) {
    throw new TrainError(
      `vocabulary size ${spec.vocabSize} is smaller than the ${alphabet.chars.length} characters needed for ${spec.characterCoverage} coverage plus ${meta.size} meta pieces; increase --vocab-size to at least ${alphabet.chars.length + meta.size} or lower --character-coverage`,
    );
  }
  const rules: PieceRules = {
    maxSentencepieceLength: spec.maxSentencepieceLength,
    splitByUnicodeScript: spec.splitByUnicodeScript,
    splitByNumber: spec.splitByNumber,
    splitByWhitespace: spec.splitByWhitespace,
    splitDigits: spec.splitDigits,
    treatWhitespaceAsSuffix: spec.treatWhitespaceAsSuffix,
    allowWhitespaceOnlyPieces: spec.allowWhitespaceOnlyPieces,
  };
  const target = spec.vocabSize - meta.size;
  let trained: Array<[string, number]>;
  let seedPieces: number | undefined;
  let emRounds: number | undefined;
  // Unigram seeding reads the sentences joined into one id array; trainUnigram releases it.
  const joined = { text: spec.modelType === 'unigram' ? concatSentences(loaded.sentences, alphabet) : undefined };
  const words = countWords(loaded.sentences, alphabet, spec.splitByWhitespace);
  const sentenceCount = loaded.sentences.length;
  loaded.sentences.length = 0; // the id forms are all that is needed from here on
  if (spec.modelType === 'bpe') {
    const numMerges = target - alphabet.chars.length;
    const r = trainBpe(words, alphabet, rules, numMerges, (pieces) => progress({ stage: 'merge', pieces: pieces + alphabet.chars.length + meta.size }));
    trained = r.pieces;
  } else {
    const charOf = [0, 0x2585, ...alphabet.chars];
    const buf: number[] = [];
    const isValid = (start: number, len: number): boolean => {
      buf.length = len;
      const text = joined.text!;
      for (let k = 0; k < len; k++) buf[k] = charOf[text[start + k]!]!;
      return isValidPiece(buf, rules);
    };
    const r = await trainUnigram(joined, words, alphabet, {
      vocabSize: target,
      desiredSize: Math.trunc(spec.vocabSize * 1.1),
      seedSentencepieceSize: spec.seedSentencepieceSize,
      shrinkingFactor: spec.shrinkingFactor,
      numSubIterations: spec.numSubIterations,
      maxPieceLength: spec.maxSentencepieceLength,
      isValid,
      threads: Math.max(1, spec.threads),
      onProgress: (stage, pieces) => progress({ stage: stage === 'prune' ? 'prune' : stage === 'em' ? 'em' : 'seed', pieces: pieces + meta.size }),
    });
    trained = r.pieces;
    seedPieces = r.seedCount;
    emRounds = r.emRounds;
  }
  if (trained.length < target) {
    const largest = trained.length + meta.size;
    throw new TrainError(
      `vocabulary size too high (${spec.vocabSize}): this corpus supports at most ${largest} pieces with these options; set --vocab-size to a value <= ${largest}`,
    );
  }

  const model = buildModelProto(spec, meta, trained, charsmap);
  const result: TrainResult = {
    model,
    vocab: formatVocab(model),
    stats: {
      linesRead: loaded.linesRead,
      sentences: sentenceCount,
      tooLongLines: loaded.tooLongLines,
      words: words.freqs.length,
      alphabetSize: alphabet.chars.length,
      characterCoverage: alphabet.coverage,
      seedPieces,
      emRounds,
      seconds: (performance.now() - t0) / 1000,
    },
  };
  progress({ stage: 'done', pieces: model.pieces.length });
  return result;
}

function buildModelProto(spec: ResolvedSpec, meta: Map<number, [string, number]>, trained: Array<[string, number]>, charsmap: Uint8Array): ModelProto {
  const pieces: SentencePiece[] = [];
  const seen = new Set<string>();
  let next = 0;
  for (let id = 0; id < spec.vocabSize; id++) {
    const m = meta.get(id);
    let piece: SentencePiece;
    if (m) {
      piece = createPiece({ piece: m[0], score: 0, type: m[1] as SentencePiece['type'] });
    } else if (next < trained.length) {
      const [w, score] = trained[next++]!;
      piece = createPiece({ piece: w, score: Math.fround(score) });
    } else {
      break;
    }
    if (seen.has(piece.piece!)) {
      throw new TrainError(`${piece.piece} is already defined (a user-defined or control symbol equals a trained piece)`);
    }
    seen.add(piece.piece!);
    pieces.push(piece);
  }
  const trainerSpec: TrainerSpec = {
    input: spec.input,
    inputFormat: '',
    modelPrefix: spec.modelPrefix,
    modelType: spec.modelType === 'bpe' ? ModelType.BPE : ModelType.UNIGRAM,
    vocabSize: spec.vocabSize,
    selfTestSampleSize: 0,
    characterCoverage: spec.characterCoverage,
    inputSentenceSize: spec.inputSentenceSize,
    shuffleInputSentence: spec.shuffleInputSentence,
    seedSentencepieceSize: spec.seedSentencepieceSize,
    shrinkingFactor: spec.shrinkingFactor,
    maxSentenceLength: spec.maxSentenceLength,
    numThreads: spec.threads,
    numSubIterations: spec.numSubIterations,
    maxSentencepieceLength: spec.maxSentencepieceLength,
    splitByUnicodeScript: spec.splitByUnicodeScript,
    splitByNumber: spec.splitByNumber,
    splitByWhitespace: spec.splitByWhitespace,
    treatWhitespaceAsSuffix: spec.treatWhitespaceAsSuffix,
    allowWhitespaceOnlyPieces: spec.allowWhitespaceOnlyPieces,
    splitDigits: spec.splitDigits,
    controlSymbols: spec.controlSymbols,
    userDefinedSymbols: spec.userDefinedSymbols,
    requiredChars: '',
    byteFallback: spec.byteFallback,
    vocabularyOutputPieceScore: true,
    hardVocabLimit: true,
    useAllVocab: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: UNK_PIECE,
    bosPiece: BOS_PIECE,
    eosPiece: EOS_PIECE,
    padPiece: PAD_PIECE,
    unkSurface: ' \u2047 ',
    trainExtremelyLargeCorpus: false,
    enableDifferentialPrivacy: false,
    differentialPrivacyNoiseLevel: 0,
    differentialPrivacyClippingThreshold: 0,
  };
  const normalizerSpec: NormalizerSpec = {
    name: spec.normalizationRuleName,
    precompiledCharsmap: charsmap,
    addDummyPrefix: spec.addDummyPrefix,
    removeExtraWhitespaces: spec.removeExtraWhitespaces,
    escapeWhitespaces: true,
    normalizationRuleTsv: '',
  };
  return { pieces, trainerSpec, normalizerSpec };
}

/**
 * Writes `<prefix>.model` and `<prefix>.vocab` atomically and together: both go to temp files in the
 * same folder (written fully, fsynced, size-checked) and are renamed only when both are complete, so
 * a full disk leaves neither (nor a model without its vocab). A failure is one line naming the file
 * (`cannot write zh.vocab: no space left on device (ENOSPC)`).
 */
export async function writeTrainedModel(prefix: string, result: TrainResult): Promise<{ modelPath: string; vocabPath: string }> {
  const modelPath = `${prefix}.model`;
  const vocabPath = `${prefix}.vocab`;
  const writers: AtomicFileWriter[] = [];
  try {
    for (const [file, data] of [
      [modelPath, serializeModelProto(result.model)],
      [vocabPath, Buffer.from(result.vocab, 'utf8')],
    ] as const) {
      const w = await AtomicFileWriter.create(file);
      writers.push(w);
      await w.write(data, true);
      await w.prepare();
    }
    for (const w of writers) await w.publish();
  } catch (e) {
    for (const w of writers) await w.abort();
    throw e instanceof CllamaError ? e : new TrainError(`cannot write ${prefix}.model / .vocab: ${(e as Error).message}`);
  }
  return { modelPath, vocabPath };
}
