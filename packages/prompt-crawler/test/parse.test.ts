import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPlaceholderInput, normalizeKey, parseReply, scanObjectSpans } from '../src/parse.js';

// hand-written replies in the shapes models really produce, with the items each should yield
const dir = join(import.meta.dirname, '..', '..', '..', 'test-fixtures', 'prompt-crawler', 'replies');
const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('parseReply on real-world messy replies', () => {
  it('has at least 20 fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(20);
  });
  for (const f of fixtures) {
    it(f, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const expected = JSON.parse(readFileSync(join(dir, f.replace(/\.txt$/, '.expected.json')), 'utf8'));
      const got = parseReply(text, { finishReason: expected.finishReason });
      expect(got.items).toEqual(expected.items);
      const reasons: Record<string, number> = {};
      for (const r of got.rejects) reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
      expect(reasons).toEqual(expected.rejects);
    });
  }
});

describe('parser pieces', () => {
  it('scans object spans ignoring braces inside strings', () => {
    const t = 'x {"a": "}{"} y {"b": {"c": 1}} {"open": "';
    const spans = scanObjectSpans(t);
    expect(spans.map((s) => [t.slice(s.start, s.end), s.complete])).toEqual([
      ['{"a": "}{"}', true],
      ['{"b": {"c": 1}}', true],
      ['{"open": "', false],
    ]);
  });
  it('maps key variants', () => {
    expect(normalizeKey('<Instruction>')).toBe('instruction');
    expect(normalizeKey('输出')).toBe('output');
    expect(normalizeKey(' input ')).toBe('input');
    expect(normalizeKey('notes')).toBeUndefined();
  });
  it('recognizes placeholder inputs but keeps real ones', () => {
    for (const p of ['', '<noinput>', '无', '<无输入>', 'N/A', '（无）', '<input>']) expect(isPlaceholderInput(p)).toBe(true);
    for (const r of ['无锡', 'none of the above', '3']) expect(isPlaceholderInput(r)).toBe(false);
  });
  it('keeps a complete final object that lacks only the closing bracket when not cut off', () => {
    const r = parseReply('[{"instruction": "a b c d", "input": "", "output": "x"}, {"instruction": "e f g h", "input": "", "output": "y"', {
      finishReason: 'stop',
    });
    expect(r.items.map((i) => i.output)).toEqual(['x', 'y']);
    const cut = parseReply('[{"instruction": "a b c d", "input": "", "output": "x"}, {"instruction": "e f g h", "input": "", "output": "y"', {
      finishReason: 'length',
    });
    expect(cut.items.map((i) => i.output)).toEqual(['x']);
    expect(cut.rejects.map((x) => x.reason)).toEqual(['truncated']);
  });
});
