/**
 * Fuzz (issue #14): SentencePiece ModelProto parsing under random truncations and byte flips, seeded
 * and bounded. Every outcome is a parsed model or the package's own TokenizerMergeError — never a
 * TypeError / RangeError stack trace, never a hang — and parsing writes nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenizerMergeError, parseModelProto, serializeModelProto } from '../src/proto.js';
import { loadTokenizer } from '../src/tokenizer.js';

const FIX = path.resolve(__dirname, '../../../test-fixtures/tokenizers');

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A truncation, a few byte flips, or both; half the flips land in the first / last 4 KiB (the structure). */
function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const kind = rnd();
  const out = Uint8Array.from(src);
  if (kind < 0.3) return out.subarray(0, Math.floor(rnd() * out.length));
  const flips = 1 + Math.floor(rnd() * 8);
  for (let i = 0; i < flips; i++) {
    const where = rnd();
    const pos =
      where < 0.25
        ? Math.floor(rnd() * Math.min(4096, out.length))
        : where < 0.5
          ? out.length - 1 - Math.floor(rnd() * Math.min(4096, out.length))
          : Math.floor(rnd() * out.length);
    out[pos] = Math.floor(rnd() * 256);
  }
  return kind > 0.85 ? out.subarray(0, Math.floor(rnd() * out.length)) : out;
}

describe('fuzz: parseModelProto', () => {
  it('300 mutated .model files: a model or a TokenizerMergeError, nothing else, nothing written', () => {
    // the real models cut to their first 400 pieces (same structure, specs included; 30× faster to parse)
    const sources = ['llama_tokenizer.model', 'chinese_sp.model'].map((f) => {
      const proto = parseModelProto(new Uint8Array(readFileSync(path.join(FIX, f))));
      return serializeModelProto({ ...proto, pieces: proto.pieces.slice(0, 400) });
    });
    const before = readdirSync(FIX);
    const rnd = mulberry32(14);
    const outcomes = { parsed: 0, refused: 0 };
    const t0 = Date.now();
    for (let i = 0; i < 300; i++) {
      const bytes = mutate(sources[i % 2]!, rnd);
      try {
        const proto = parseModelProto(bytes, `case ${i}`);
        expect(Array.isArray(proto.pieces)).toBe(true);
        outcomes.parsed++;
      } catch (err) {
        if (!(err instanceof TokenizerMergeError)) throw new Error(`case ${i}: ${(err as Error)?.name}: ${(err as Error)?.message}`);
        expect((err as Error).message.split('\n')).toHaveLength(1);
        outcomes.refused++;
      }
    }
    expect(outcomes.parsed + outcomes.refused).toBe(300);
    expect(outcomes.refused).toBeGreaterThan(30);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(readdirSync(FIX)).toEqual(before);
  });

  it('mutated models that still parse load as tokenizers or fail with a TokenizerMergeError', async () => {
    const src = new Uint8Array(readFileSync(path.join(FIX, 'llama_tokenizer.model')));
    const rnd = mulberry32(41);
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'tok-fuzz-'));
    let loaded = 0;
    for (let i = 0; i < 25; i++) {
      const bytes = mutate(src, rnd);
      const file = path.join(dir, `m${i}.model`);
      writeFileSync(file, bytes);
      try {
        const tok = await loadTokenizer(file);
        tok.encode('黄河入海流 hello');
        loaded++;
      } catch (err) {
        if (!(err instanceof TokenizerMergeError)) throw new Error(`case ${i}: ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
    }
    expect(loaded).toBeGreaterThanOrEqual(0);
    expect(readdirSync(dir)).toHaveLength(25);
  });
});
