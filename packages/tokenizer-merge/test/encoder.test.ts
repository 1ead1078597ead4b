/**
 * The TypeScript SentencePiece encoder against real SentencePiece: sentencepiece-js (the C++
 * library compiled to wasm) on thousands of real lines and on synthetic model variants, and Python
 * sentencepiece 0.1.97's ids for edge cases (test-fixtures/data/encoder_golden.json).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SentencePieceProcessor } from 'sentencepiece-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SentencePieceEncoder, decodeBytesLikeSentencePiece } from '../src/encoder/index.js';
import { parseModelProto, serializeModelProto, type ModelProto } from '../src/proto.js';

const FIXTURES = path.resolve(__dirname, '../../../test-fixtures');
const MODELS = ['llama_tokenizer', 'merged_reference', 'chinese_sp'] as const;
type ModelName = (typeof MODELS)[number];

const readLines = (file: string) =>
  readFileSync(path.join(FIXTURES, 'data', file), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
const zhLines = readLines('zh_heldout_3000.txt');
const c4Docs = readLines('c4_demo.jsonl').map((l) => JSON.parse(l).text as string);
const alpacaEn = (JSON.parse(readFileSync(path.join(FIXTURES, 'data/alpaca_en_demo.json'), 'utf8')) as Array<Record<string, string>>)
  .slice(0, 300)
  .flatMap((r) => [r.instruction, r.input, r.output].filter((t) => t && t.length > 0));
const alpacaZh = (JSON.parse(readFileSync(path.join(FIXTURES, 'data/alpaca_zh_demo.json'), 'utf8')) as Array<Record<string, string>>)
  .slice(0, 300)
  .flatMap((r) => [r.instruction, r.input, r.output].filter((t) => t && t.length > 0));
const golden = JSON.parse(readFileSync(path.join(FIXTURES, 'data/encoder_golden.json'), 'utf8')) as {
  texts: string[];
  ids: Record<ModelName, number[][]>;
  decoded: Record<ModelName, string[]>;
};

function readProto(name: string): ModelProto {
  return parseModelProto(new Uint8Array(readFileSync(path.join(FIXTURES, 'tokenizers', `${name}.model`))));
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'cllama-encoder-test-'));
let tmpCount = 0;

/** Real SentencePiece for `proto` (sentencepiece-js loads from a file). */
async function oracle(proto: ModelProto): Promise<SentencePieceProcessor> {
  const file = path.join(tmp, `m${tmpCount++}.model`);
  writeFileSync(file, serializeModelProto(proto));
  const before = process.listeners('uncaughtException');
  const beforeRejection = process.listeners('unhandledRejection');
  const spp = new SentencePieceProcessor();
  await spp.load(file);
  // The wasm module adds process-wide rethrowing handlers on every load; drop them.
  for (const l of process.listeners('uncaughtException')) if (!before.includes(l)) process.removeListener('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection')) if (!beforeRejection.includes(l)) process.removeListener('unhandledRejection', l);
  return spp;
}

interface Comparison {
  identical: number;
  total: number;
  firstMismatch?: { text: string; want: number[]; got: number[] };
}

function compare(encoder: SentencePieceEncoder, spp: SentencePieceProcessor, texts: readonly string[]): Comparison {
  let identical = 0;
  let firstMismatch: Comparison['firstMismatch'];
  for (const text of texts) {
    const want = text.length > 0 ? spp.encodeIds(text) : [];
    const got = encoder.encode(text);
    if (want.length === got.length && want.every((id, k) => id === got[k])) identical++;
    else firstMismatch ??= { text, want, got };
  }
  return { identical, total: texts.length, firstMismatch };
}

/**
 * sentencepiece-js (emscripten) converts a lone surrogate into bytes that are not UTF-8, while
 * TextEncoder, Node and Python give U+FFFD (EF BF BD), as we do; such texts are checked against
 * Python only.
 */
const hasLoneSurrogate = (t: string) => /[\ud800-\udfff]/.test(t.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''));

/** sentencepiece-js turns the C++ UTF-8 into a JS string with TextDecoder, which drops a leading BOM. */
function sameDecoded(ours: string, wasm: string): boolean {
  return ours === wasm || (ours.startsWith('\ufeff') && ours.slice(1) === wasm);
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(MODELS)('%s: ids identical to SentencePiece', (name) => {
  let encoder: SentencePieceEncoder;
  let spp: SentencePieceProcessor;
  beforeAll(async () => {
    const proto = readProto(name);
    encoder = new SentencePieceEncoder(proto);
    spp = await oracle(proto);
  });

  it('on 3,000 held-out Chinese lines, 300 C4 documents and Alpaca en/zh records (vs sentencepiece-js)', () => {
    for (const [label, texts] of [
      ['zh_heldout', zhLines],
      ['c4', c4Docs],
      ['alpaca_en', alpacaEn],
      ['alpaca_zh', alpacaZh],
    ] as const) {
      const result = compare(encoder, spp, texts);
      expect({ label, ...result }).toEqual({ label, identical: texts.length, total: texts.length, firstMismatch: undefined });
    }
  });

  it('on edge cases (vs Python sentencepiece 0.1.97 and sentencepiece-js)', () => {
    golden.texts.forEach((text, i) => {
      expect({ text, ids: encoder.encode(text) }).toEqual({ text, ids: golden.ids[name][i] });
    });
    expect(
      compare(
        encoder,
        spp,
        golden.texts.filter((t) => !hasLoneSurrogate(t)),
      ).firstMismatch,
    ).toBeUndefined();
  });

  it('gives the pieces EncodeAsPieces gives (unknown runs as their text)', () => {
    const texts = [...golden.texts.filter((t) => !hasLoneSurrogate(t)), ...zhLines.slice(0, 1000), ...c4Docs.slice(0, 50)];
    for (const text of texts) {
      const want = text.length > 0 ? spp.encodePieces(text) : [];
      const got = encoder.encodePieces(text);
      if (want.length !== got.length || want.some((p, k) => p !== got[k])) expect({ text, got }).toEqual({ text, got: want });
    }
  });

  it('decodes as SentencePiece does', () => {
    golden.texts.forEach((text, i) => {
      expect({ text, decoded: encoder.decode(golden.ids[name][i]) }).toEqual({ text, decoded: golden.decoded[name][i] });
    });
    for (const text of [...zhLines.slice(0, 1000), ...c4Docs.slice(0, 100)]) {
      const ids = spp.encodeIds(text);
      const ours = encoder.decode(ids);
      if (!sameDecoded(ours, spp.decodeIds(ids))) expect({ text, ours }).toEqual({ text, ours: spp.decodeIds(ids) });
    }
  });
});

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each(MODELS)('%s: fuzz against sentencepiece-js', (name) => {
  it('random texts from a mixed alphabet encode identically; random id sequences decode identically', async () => {
    const proto = readProto(name);
    const encoder = new SentencePieceEncoder(proto);
    const spp = await oracle(proto);
    const random = rng(name.length * 7919);
    // Characters that exercise merges, spaces, normalization, unknowns and byte fallback.
    const alphabet = [...'  \t\nabcdeinorst。，、的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会．．..!?0123'];
    alphabet.push('\u3000', 'Ａ', 'ｂ', '😀', '𠮷', '\u200b', '\u0301', '▁', 'ﬁ', '①', 'Ω', 'é', 'ß', '\u00a0', '\ufeff');
    const texts: string[] = [];
    for (let k = 0; k < 400; k++) {
      const length = 1 + Math.floor(random() * 40);
      let t = '';
      for (let i = 0; i < length; i++) t += alphabet[Math.floor(random() * alphabet.length)];
      texts.push(t);
    }
    expect(compare(encoder, spp, texts)).toEqual({ identical: texts.length, total: texts.length, firstMismatch: undefined });
    // Random id sequences: control, unknown, byte (often malformed UTF-8) and normal pieces mixed.
    const special = proto.pieces.flatMap((p, i) => (p.type !== undefined && p.type !== 1 ? [i] : []));
    for (let k = 0; k < 400; k++) {
      const ids: number[] = [];
      const length = 1 + Math.floor(random() * 12);
      for (let i = 0; i < length; i++) {
        ids.push(random() < 0.5 ? special[Math.floor(random() * special.length)] : Math.floor(random() * proto.pieces.length));
      }
      const ours = encoder.decode(ids);
      const wasm = spp.decodeIds(ids);
      if (!sameDecoded(ours, wasm)) expect({ ids, ours }).toEqual({ ids, ours: wasm });
    }
  });
});

describe('model variants (user-defined symbols, UNUSED pieces, no byte fallback, NFKC normalizer on BPE)', () => {
  const texts = [...golden.texts, ...zhLines.slice(0, 300), ...c4Docs.slice(0, 30), '<tool>call</tool> <tool>', 'hello<sep>world<sep><sep>'].filter(
    (t) => !hasLoneSurrogate(t),
  );

  async function expectSame(proto: ModelProto): Promise<void> {
    const encoder = new SentencePieceEncoder(proto);
    const spp = await oracle(proto);
    expect(compare(encoder, spp, texts)).toEqual({ identical: texts.length, total: texts.length, firstMismatch: undefined });
    for (const text of texts) {
      const want = text.length > 0 ? spp.encodePieces(text) : [];
      const got = encoder.encodePieces(text);
      if (want.join('\u0000') !== got.join('\u0000')) expect({ text, got }).toEqual({ text, got: want });
    }
  }

  function withUserDefined(proto: ModelProto, symbols: string[]): ModelProto {
    return { ...proto, pieces: [...proto.pieces, ...symbols.map((piece) => ({ piece, score: 0, type: 4 as const }))] };
  }

  it('BPE with user-defined symbols (frozen symbols, normalizer pass-through)', async () => {
    await expectSame(withUserDefined(readProto('merged_reference'), ['<tool>', '</tool>', '<sep>', '〔中文〕', 'ing wor']));
  });

  it('BPE with UNUSED pieces (resegmented into the pair they were merged from)', async () => {
    const proto = readProto('llama_tokenizer');
    const pieces = proto.pieces.map((p, i) => (i % 7 === 0 && (p.type ?? 1) === 1 && [...(p.piece ?? '')].length > 1 ? { ...p, type: 5 as const } : p));
    await expectSame({ ...proto, pieces });
  });

  it('BPE without byte fallback (runs of unknown characters collapse into one unk)', async () => {
    const proto = readProto('llama_tokenizer');
    // SentencePiece refuses byte pieces without byte fallback, so drop them too.
    const pieces = proto.pieces.filter((p) => p.type !== 6);
    await expectSame({ ...proto, pieces, trainerSpec: { ...proto.trainerSpec, byteFallback: false } });
  });

  it('BPE with the nmt_nfkc normalizer and whitespace removal of chinese_sp', async () => {
    const proto = readProto('merged_reference');
    await expectSame({ ...proto, normalizerSpec: readProto('chinese_sp').normalizerSpec });
  });

  it('UNIGRAM with user-defined symbols and byte fallback', async () => {
    const proto = withUserDefined(readProto('chinese_sp'), ['<tool>', '</tool>', '<sep>', '〔中文〕']);
    const bytes = Array.from({ length: 256 }, (_, b) => ({
      piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`,
      score: 0,
      type: 6 as const,
    }));
    await expectSame({ ...proto, pieces: [...proto.pieces, ...bytes], trainerSpec: { ...proto.trainerSpec, byteFallback: true } });
  });

  it('UNIGRAM with UNUSED pieces and without dummy prefix', async () => {
    const proto = readProto('chinese_sp');
    const pieces = proto.pieces.map((p, i) => (i % 5 === 0 && (p.type ?? 1) === 1 ? { ...p, type: 5 as const } : p));
    await expectSame({ ...proto, pieces, normalizerSpec: { ...proto.normalizerSpec, addDummyPrefix: false } });
  });
});

describe('round trip and errors', () => {
  it('decode(encode(text)) === text for the merged model (identity normalizer, byte fallback)', () => {
    const encoder = new SentencePieceEncoder(readProto('merged_reference'));
    // Not invertible: lone surrogates (become U+FFFD) and a literal "▁" (decodes to a space).
    const wellFormed = golden.texts.filter((t) => !hasLoneSurrogate(t) && !t.includes('\u2581'));
    for (const text of [...wellFormed, ...zhLines, ...c4Docs]) {
      const decoded = encoder.decode(encoder.encode(text));
      if (decoded !== text) expect(decoded).toBe(text);
    }
  });

  it('decodes malformed byte runs to one U+FFFD per bad byte, as SentencePiece', () => {
    expect(decodeBytesLikeSentencePiece([0xe4, 0xb8, 0x41, 0xf0, 0x9f, 0x98, 0x80, 0xff])).toBe('\ufffd\ufffdA😀\ufffd');
    expect(decodeBytesLikeSentencePiece([0xed, 0xa0, 0x80])).toBe('\ufffd\ufffd\ufffd'); // encoded surrogate
  });

  it('rejects ids outside the vocabulary and unsupported models with clear errors', () => {
    const encoder = new SentencePieceEncoder(readProto('llama_tokenizer'));
    expect(() => encoder.decode([32000])).toThrow(/outside the vocabulary \(0\.\.31999\)/);
    expect(() => encoder.decode([1.5])).toThrow(/outside the vocabulary/);
    const proto = readProto('llama_tokenizer');
    expect(() => new SentencePieceEncoder({ ...proto, trainerSpec: { ...proto.trainerSpec, modelType: 3 } })).toThrow(/WORD or CHAR/);
    expect(() => new SentencePieceEncoder({ ...proto, pieces: proto.pieces.filter((p) => p.type !== 2) })).toThrow(/no unknown/);
    expect(() => new SentencePieceEncoder({ ...proto, pieces: [...proto.pieces, { piece: 'the', score: 0 }] })).toThrow(/already defined/);
    expect(() => new SentencePieceEncoder({ ...proto, trainerSpec: { ...proto.trainerSpec, byteFallback: false } })).toThrow(
      /byte piece "<0x00>" \(id 3\) is found although trainer_spec.byte_fallback is false/,
    );
    const noBytes = proto.pieces.filter((p) => p.type !== 6 || p.piece !== '<0x41>');
    expect(() => new SentencePieceEncoder({ ...proto, pieces: noBytes })).toThrow(/255 byte pieces, not 256/);
  });
});
