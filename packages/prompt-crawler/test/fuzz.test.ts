/**
 * Fuzz (issue #14), seeded and bounded: chat replies (the 20+ real-world reply fixtures) under random
 * truncations, byte flips (decoded as UTF-8 with replacement, like a reply body), character insertions
 * of JSON punctuation, and duplications. parseReply never throws, never hangs, returns only well-formed
 * items, and accounts for the text it could not use.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseReply } from '../src/parse.js';
import { mulberry32 } from '@cllama/core';

const dir = join(import.meta.dirname, '..', '..', '..', 'test-fixtures', 'prompt-crawler', 'replies');
const replies = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => readFileSync(join(dir, f)));

const PUNCT = ['{', '}', '[', ']', '"', ',', ':', '\\', '\n', '```', '，', '：', '“', '”', 'instruction', 'output', '\u0000', '\uFEFF'];

function mutate(src: Buffer, next: () => number): string {
  const kind = next();
  if (kind < 0.25) return src.subarray(0, Math.floor(next() * src.length)).toString('utf8');
  if (kind < 0.5) {
    const b = Buffer.from(src);
    for (let i = 0; i < 1 + Math.floor(next() * 8); i++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
    return b.toString('utf8');
  }
  let s = src.toString('utf8');
  if (kind < 0.8) {
    for (let i = 0; i < 1 + Math.floor(next() * 6); i++) {
      const at = Math.floor(next() * (s.length + 1));
      s = s.slice(0, at) + PUNCT[Math.floor(next() * PUNCT.length)] + s.slice(at);
    }
    return s;
  }
  const a = Math.floor(next() * s.length);
  return s.slice(0, a) + s.slice(Math.floor(next() * s.length)); // a cut-and-splice (duplicated or dropped middle)
}

describe('fuzz: parseReply', () => {
  it('400 mutated replies: never throws, items well-formed, nothing unaccounted', () => {
    const next = mulberry32(1407);
    const t0 = Date.now();
    let items = 0;
    for (let i = 0; i < 400; i++) {
      const text = mutate(replies[i % replies.length]!, next);
      const finishReason = next() < 0.2 ? 'length' : 'stop';
      let r: ReturnType<typeof parseReply>;
      try {
        r = parseReply(text, { finishReason });
      } catch (err) {
        throw new Error(`case ${i}: parseReply threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
      for (const it of r.items) {
        expect(typeof it.instruction).toBe('string');
        expect(typeof it.input).toBe('string');
        expect(typeof it.output).toBe('string');
        expect(it.instruction.trim()).not.toBe('');
      }
      for (const rej of r.rejects) expect(typeof rej.raw).toBe('string');
      if (text.trim() !== '' && r.items.length === 0) expect(r.rejects.length).toBeGreaterThan(0);
      items += r.items.length;
    }
    expect(items).toBeGreaterThan(100);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('hostile shapes: deep nesting, huge unterminated strings and brace floods return quickly', () => {
    const t0 = Date.now();
    const deepObject = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    const deepWrapper = '{"items":'.repeat(3000) + '[' + '{"x":'.repeat(3000);
    for (const text of [
      deepObject,
      deepWrapper,
      '['.repeat(50_000),
      '{'.repeat(50_000),
      `{"instruction": "${'x'.repeat(200_000)}`,
      '{"a":1}'.repeat(20_000),
      '"'.repeat(100_000),
      '```json\n'.repeat(10_000),
    ]) {
      const r = parseReply(text, { finishReason: 'length' });
      expect(Array.isArray(r.items)).toBe(true);
      expect(r.items.length + r.rejects.length).toBeGreaterThan(0);
    }
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
