import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '@cllama/core';
import { createProgram } from '../src/cli/program.js';
import { mergeVocab } from '../src/merge.js';
import { PieceType, ModelType, parseModelProto, readModelProto, serializeModelProto } from '../src/proto.js';
import { loadTokenizer } from '../src/tokenizer.js';
import { TrainError } from '../src/train/errors.js';
import { nmtNfkcCharsmap } from '../src/train/nmt-nfkc-charsmap.js';
import { Normalizer } from '../src/train/normalizer.js';
import { trainSentencePiece, writeTrainedModel, type TrainResult } from '../src/train/train.js';
import { formatScore } from '../src/train/vocab-file.js';

const fixtures = path.resolve(__dirname, '../../../test-fixtures');
const corpus = path.join(fixtures, 'data/zh_train_2000.txt');
const heldoutFile = path.join(fixtures, 'data/zh_heldout_3000.txt');
const reference = JSON.parse(await fs.readFile(path.join(fixtures, 'data/zh_train_2000.spm_train.json'), 'utf8')) as {
  alphabetSize: number;
  sentences: number;
  words: number;
  unigramSeedPieces: number;
  bpe: { vocabSize: number; tokensPerChar: number };
  unigram: { vocabSize: number; tokensPerChar: number };
  normalized: Record<string, string>;
};

let tmp: string;
const results: Record<'bpe' | 'unigram', TrainResult> = {} as never;
const modelPaths: Record<'bpe' | 'unigram', string> = {} as never;
let heldout: string[];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'spmtrain-'));
  heldout = (await fs.readFile(heldoutFile, 'utf8')).split('\n').slice(0, 500);
  for (const type of ['bpe', 'unigram'] as const) {
    results[type] = await trainSentencePiece({ input: corpus, vocabSize: 4000, modelType: type, characterCoverage: 0.9995, threads: 2 });
    modelPaths[type] = (await writeTrainedModel(path.join(tmp, type), results[type])).modelPath;
  }
});

async function tokensPerChar(modelPath: string): Promise<number> {
  const tok = await loadTokenizer(modelPath);
  let tokens = 0;
  let chars = 0;
  for (const line of heldout) {
    tokens += tok.encode(line).length;
    chars += [...line].length;
  }
  return tokens / chars;
}

describe('normalizer (nmt_nfkc precompiled charsmap)', () => {
  it('normalizes like spm_normalize', () => {
    const n = new Normalizer({
      charsmap: nmtNfkcCharsmap(),
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
      treatWhitespaceAsSuffix: false,
    });
    for (const [input, expected] of Object.entries(reference.normalized)) expect(n.normalize(input)).toBe(expected);
  });

  it('bundles the exact charsmap blob spm_train writes', async () => {
    const chinese = await readModelProto(path.join(fixtures, 'tokenizers/chinese_sp.model'));
    expect(Buffer.from(nmtNfkcCharsmap()).equals(Buffer.from(chinese.normalizerSpec!.precompiledCharsmap!))).toBe(true);
  });
});

describe.each(['bpe', 'unigram'] as const)('%s training', (type) => {
  it('prepares the corpus as spm_train does', () => {
    const s = results[type].stats;
    expect(s.sentences).toBe(reference.sentences);
    expect(s.words).toBe(reference.words);
    expect(s.alphabetSize).toBe(reference.alphabetSize);
    if (type === 'unigram') expect(s.seedPieces).toBe(reference.unigramSeedPieces);
  });

  it('writes a real SentencePiece model: meta pieces, trainer and normalizer spec', async () => {
    const model = parseModelProto(new Uint8Array(await fs.readFile(modelPaths[type])));
    expect(model.pieces).toHaveLength(4000);
    expect(model.pieces.slice(0, 3).map((p) => [p.piece, p.type])).toEqual([
      ['<unk>', PieceType.UNKNOWN],
      ['<s>', PieceType.CONTROL],
      ['</s>', PieceType.CONTROL],
    ]);
    expect(new Set(model.pieces.map((p) => p.piece)).size).toBe(4000);
    expect(model.trainerSpec!.modelType).toBe(type === 'bpe' ? ModelType.BPE : ModelType.UNIGRAM);
    expect(model.trainerSpec!.vocabSize).toBe(4000);
    expect(model.trainerSpec!.characterCoverage).toBeCloseTo(0.9995, 6);
    expect(model.normalizerSpec!.name).toBe('nmt_nfkc');
    expect(model.normalizerSpec!.addDummyPrefix).toBe(true);
    const trained = model.pieces.slice(3);
    if (type === 'bpe') {
      // scores are -(creation order); merged pieces first, the alphabet last
      trained.forEach((p, i) => expect(p.score).toBe(-i));
      expect(trained.slice(-reference.alphabetSize).every((p) => [...p.piece!].length === 1)).toBe(true);
    } else {
      for (let i = 1; i < trained.length; i++) expect(trained[i]!.score!).toBeLessThanOrEqual(trained[i - 1]!.score!);
      expect(trained[0]!.score!).toBeLessThan(0);
    }
    // no piece breaks SentencePiece's rules: ▁ only in front, at most 16 characters
    for (const p of trained) {
      expect(p.piece!.indexOf('▁', 1)).toBe(-1);
      expect([...p.piece!].length).toBeLessThanOrEqual(16);
    }
    const vocab = await fs.readFile(modelPaths[type].replace(/\.model$/, '.vocab'), 'utf8');
    const lines = vocab.trimEnd().split('\n');
    expect(lines).toHaveLength(4000);
    expect(lines[0]).toBe('<unk>\t0');
    expect(lines[5]).toBe(`${trained[2]!.piece}\t${formatScore(trained[2]!.score!)}`);
  });

  it('held-out tokens/char within 1% of spm_train (real SentencePiece encodes it)', async () => {
    const ours = await tokensPerChar(modelPaths[type]);
    const theirs = reference[type].tokensPerChar;
    expect(Math.abs(ours / theirs - 1)).toBeLessThan(0.01);
  });

  it('round-trips through serialize/parse and merges into LLaMA without duplicates', async () => {
    const model = results[type].model;
    expect(Buffer.from(serializeModelProto(parseModelProto(serializeModelProto(model)))).equals(Buffer.from(serializeModelProto(model)))).toBe(true);
    const llama = await readModelProto(path.join(fixtures, 'tokenizers/llama_tokenizer.model'));
    const llamaPieces = new Set(llama.pieces.map((p) => p.piece));
    const fresh = model.pieces.filter((p) => !llamaPieces.has(p.piece)).length;
    const merged = mergeVocab(llama, model);
    expect(merged.pieces).toHaveLength(llama.pieces.length + fresh);
    expect(new Set(merged.pieces.map((p) => p.piece)).size).toBe(merged.pieces.length);
  });
});

describe('options', () => {
  it('character coverage decides the alphabet; dropped characters become <unk>', async () => {
    const full = await trainSentencePiece({ input: corpus, vocabSize: 6000, modelType: 'bpe', characterCoverage: 1 });
    const low = await trainSentencePiece({ input: corpus, vocabSize: 3000, modelType: 'bpe', characterCoverage: 0.98 });
    expect(full.stats.alphabetSize).toBeGreaterThan(reference.alphabetSize);
    expect(low.stats.alphabetSize).toBeLessThan(reference.alphabetSize);
    expect(low.stats.characterCoverage).toBeGreaterThanOrEqual(0.98);
    expect(full.stats.characterCoverage).toBe(1);
    const inFull = new Set(full.model.pieces.map((p) => p.piece));
    const inLow = new Set(low.model.pieces.map((p) => p.piece));
    const dropped = [...inFull].find((p) => p !== undefined && [...p].length === 1 && p !== '▁' && !inLow.has(p) && !/[<>]/.test(p))!;
    expect(dropped).toBeDefined();
    const file = path.join(tmp, 'low');
    await writeTrainedModel(file, low);
    const tok = await loadTokenizer(`${file}.model`);
    expect(tok.encode(dropped)).toContain(tok.unkId);
  });

  it('byte fallback adds <0x00>…<0xFF> and encodes unknown characters as UTF-8 bytes', async () => {
    const r = await trainSentencePiece({ input: corpus, vocabSize: 3000, modelType: 'bpe', byteFallback: true });
    const bytes = r.model.pieces.slice(3, 259);
    expect(bytes.map((p) => p.piece)).toEqual(Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`));
    expect(bytes.every((p) => p.type === PieceType.BYTE)).toBe(true);
    expect(r.model.trainerSpec!.byteFallback).toBe(true);
    const file = path.join(tmp, 'bytes');
    await writeTrainedModel(file, r);
    const tok = await loadTokenizer(`${file}.model`);
    const ids = tok.encode('𝄞');
    expect(ids.slice(-4).map((id) => tok.idToPiece(id))).toEqual(['<0xF0>', '<0x9D>', '<0x84>', '<0x9E>']);
  });

  it('user-defined symbols get the first free ids and stay whole', async () => {
    const r = await trainSentencePiece({ input: corpus, vocabSize: 3000, modelType: 'unigram', userDefinedSymbols: ['<sep>', '好评'] });
    expect(r.model.pieces.slice(3, 5).map((p) => [p.piece, p.type])).toEqual([
      ['<sep>', PieceType.USER_DEFINED],
      ['好评', PieceType.USER_DEFINED],
    ]);
    // the symbol is a boundary in training text: no trained piece contains it
    expect(r.model.pieces.slice(5).some((p) => p.piece!.includes('好评'))).toBe(false);
    const file = path.join(tmp, 'user');
    await writeTrainedModel(file, r);
    const tok = await loadTokenizer(`${file}.model`);
    const pieces = tok.encode('这家店值得好评<sep>下次再来').map((id) => tok.idToPiece(id));
    expect(pieces).toContain('好评');
    expect(pieces).toContain('<sep>');
  });

  it('input_sentence_size samples reproducibly with a seed; split_digits splits numbers', async () => {
    const a = await trainSentencePiece({ input: corpus, vocabSize: 3500, modelType: 'bpe', inputSentenceSize: 500, seed: 7, splitDigits: true });
    const b = await trainSentencePiece({ input: corpus, vocabSize: 3500, modelType: 'bpe', inputSentenceSize: 500, seed: 7, splitDigits: true });
    const c = await trainSentencePiece({ input: corpus, vocabSize: 3500, modelType: 'bpe', inputSentenceSize: 500, seed: 8, splitDigits: true });
    expect(a.stats.sentences).toBe(500);
    expect(a.vocab).toBe(b.vocab);
    expect(a.vocab).not.toBe(c.vocab);
    expect(a.model.pieces.some((p) => /\d/.test(p.piece!) && [...p.piece!].length > 1)).toBe(false);
  }, 60_000);

  it('worker threads change nothing but speed', async () => {
    const one = await trainSentencePiece({ input: corpus, vocabSize: 4000, modelType: 'unigram', threads: 1 });
    expect(one.vocab).toBe(results.unigram.vocab);
  });
});

describe('errors', () => {
  it('empty input', async () => {
    const empty = path.join(tmp, 'empty.txt');
    await fs.writeFile(empty, '\n\n');
    await expect(trainSentencePiece({ input: empty, vocabSize: 100 })).rejects.toThrow(/no usable sentences/);
    await expect(trainSentencePiece({ input: path.join(tmp, 'missing.txt'), vocabSize: 100 })).rejects.toThrow(TrainError);
  });

  it('vocabulary larger than the corpus supports names the largest possible', async () => {
    const small = path.join(tmp, 'small.txt');
    await fs.writeFile(small, '我们喜欢这家酒店\n酒店很干净\n我们还会再来\n');
    const err = await trainSentencePiece({ input: small, vocabSize: 500, modelType: 'bpe' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainError);
    const largest = Number(/at most (\d+)/.exec((err as Error).message)![1]);
    expect((err as Error).message).toMatch(/--vocab-size to a value <= \d+/);
    // and that size does train
    const ok = await trainSentencePiece({ input: small, vocabSize: largest, modelType: 'bpe' });
    expect(ok.model.pieces).toHaveLength(largest);
    const errU = await trainSentencePiece({ input: small, vocabSize: 500, modelType: 'unigram' }).catch((e: unknown) => e);
    expect((errU as Error).message).toMatch(/at most \d+ pieces/);
  });

  it('vocabulary smaller than the alphabet says how large it must be', async () => {
    await expect(trainSentencePiece({ input: corpus, vocabSize: 1500, modelType: 'bpe' })).rejects.toThrow(
      new RegExp(`at least ${reference.alphabetSize + 3}`),
    );
  });

  it('the CLI trains, and reports bad options in one line with a non-zero exit', async () => {
    const out = path.join(tmp, 'cli');
    const code = await runCli(createProgram(), ['train', '--input', corpus, '--vocab-size', '3000', '--model-type', 'bpe', '--out', out, '--no-progress']);
    expect(code).toBe(0);
    expect(parseModelProto(new Uint8Array(await fs.readFile(`${out}.model`))).pieces).toHaveLength(3000);
    const bad = await runCli(createProgram(), [
      'train',
      '--input',
      corpus,
      '--vocab-size',
      '3000',
      '--character-coverage',
      '0.5',
      '--out',
      out,
      '--no-progress',
      '--force',
    ]);
    expect(bad).toBe(1);
  });
});
