import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RecordError } from '../src/errors.js';
import { readJsonArray, readJsonRecords, readTextLines } from '../src/readers.js';
import { readAlpacaRecords } from '../src/records.js';
import { DATA } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cllama-read-'));
function file(name: string, content: string | Buffer): string {
  const p = path.join(tmp, name);
  writeFileSync(p, content);
  return p;
}
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('streamed JSON readers', () => {
  it('read the whole demo array exactly as JSON.parse does', async () => {
    const f = path.join(DATA, 'alpaca_zh_demo.json');
    const items = await collect(readJsonRecords(f));
    expect(items.every((i) => i.ok)).toBe(true);
    expect(items.map((i) => (i.ok ? i.value : null))).toEqual(JSON.parse(readFileSync(f, 'utf8')));
  });

  it('split correctly across read-chunk boundaries (a 3 MB array with nesting, escapes and multi-byte text)', async () => {
    const base = JSON.parse(readFileSync(path.join(DATA, 'alpaca_zh_demo.json'), 'utf8')) as object[];
    const tricky = { tail: 'ends in a backslash \\', instruction: 'quote \\" ] } , [ { "', input: '中文\n\t😀', output: 'x', nested: [[1, { a: ']' }], []] };
    const all = [];
    for (let i = 0; all.length < 5000; i++) all.push(i % 50 === 0 ? tricky : base[i % base.length]);
    const f = file('big.json', JSON.stringify(all, null, 1));
    expect(readFileSync(f).length).toBeGreaterThan(2_500_000);
    const items = await collect(readJsonArray(f));
    expect(items.length).toBe(all.length);
    expect(items.map((i) => (i.ok ? i.value : i.error.message))).toEqual(all);
  });

  it('report malformed records by number and line, and keep going', async () => {
    const bad = Buffer.concat([
      Buffer.from('[\n {"instruction": "a", "output": "b"},\n {"instruction": tru},\n {"instruction": "'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('", "output": "c"},\n 42,,\n {"instruction": "d", "output": "e"}\n]\n'),
    ]);
    const items = await collect(readJsonArray(file('bad.json', bad)));
    const summary = items.map((i) => (i.ok ? 'ok' : i.error.message));
    expect(summary[0]).toBe('ok');
    expect(summary[1]).toMatch(/record 2 \(line 3\): not valid JSON/);
    expect(summary[2]).toMatch(/record 3 \(line 4\): not valid UTF-8 \(bad byte 0xff/);
    expect(summary[3]).toBe('ok'); // 42 is valid JSON; the Alpaca check rejects it later
    expect(summary[4]).toMatch(/record 5 .*empty element/);
    expect(summary[5]).toBe('ok');
    expect(items.length).toBe(6);
  });

  it('report a truncated array and trailing garbage', async () => {
    const t = await collect(readJsonArray(file('trunc.json', '[{"instruction": "a", "output": "b"}, {"instruction": "c", "out')));
    expect(t[0].ok).toBe(true);
    expect(t[1].ok ? '' : t[1].error.message).toMatch(/record 2 \(line 1\): the file ends inside the array/);
    const g = await collect(readJsonArray(file('trail.json', '[1]\nxyz')));
    expect(g.map((i) => (i.ok ? i.value : i.error.message))).toEqual([1, expect.stringMatching(/line 2: unexpected data after/)]);
    await expect(collect(readJsonArray(file('obj.json', '{"a": 1}')))).rejects.toThrow(/expected a JSON array/);
    await expect(collect(readJsonRecords(path.join(tmp, 'missing.json')))).rejects.toThrow(/not found/);
  });

  it('read JSON lines with line numbers, CRLF, blank lines and a BOM', async () => {
    const f = file('x.jsonl', '\ufeff{"a":1}\r\n\r\n{"a":\n{"a":3}');
    const items = await collect(readJsonRecords(f));
    expect(items.map((i) => (i.ok ? i.value : i.error.message))).toEqual([{ a: 1 }, expect.stringMatching(/x.jsonl line 3: not valid JSON/), { a: 3 }]);
  });

  it('read text lines, reporting non-UTF-8 lines', async () => {
    const f = file('t.txt', Buffer.concat([Buffer.from('一\r\nbad '), Buffer.from([0xc3, 0x28]), Buffer.from('\n\nlast')]));
    const errors: RecordError[] = [];
    expect(await collect(readTextLines(f, (e) => errors.push(e)))).toEqual(['一', '', 'last']);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/t.txt line 2: not valid UTF-8/)]);
  });
});

describe('text lines over read-chunk boundaries', () => {
  it('match a plain split, with one bad line reported by number', async () => {
    const lines = Array.from({ length: 60000 }, (_, i) => (i % 7 === 0 ? '' : `第${i}行 line ${i} 😀`.repeat(1 + (i % 3))));
    const parts = lines.map((l, i) => (i === 31234 ? Buffer.concat([Buffer.from('x'), Buffer.from([0xe4, 0x41])]) : Buffer.from(l)));
    const f = file('big.txt', Buffer.concat(parts.flatMap((p, i) => [p, Buffer.from(i % 5 === 0 ? '\r\n' : '\n')])));
    expect(readFileSync(f).length).toBeGreaterThan(2_000_000);
    const errors: RecordError[] = [];
    const got = await collect(readTextLines(f, (e) => errors.push(e)));
    expect(got).toEqual(lines.filter((_, i) => i !== 31234));
    expect(errors.map((e) => e.where)).toEqual(['line 31235']);
  });
});

describe('Alpaca records', () => {
  it('reports missing fields and wrong types without stopping; strict throws', async () => {
    const lines = [
      { instruction: 'a', input: '', output: 'b' },
      { instruction: 'no output' },
      { output: 'no instruction' },
      { instruction: 5, output: 'x' },
      { instruction: 'i', input: ['x'], output: 'o' },
      { instruction: 'null input', input: null, output: 'o', type: 'kept' },
      'a string',
    ];
    const f = file('r.jsonl', lines.map((l) => JSON.stringify(l)).join('\n'));
    const errors: string[] = [];
    const recs = await collect(readAlpacaRecords(f, { onError: (e) => errors.push(e.message) }));
    expect(recs.map((r) => r.record)).toEqual([
      { instruction: 'a', input: '', output: 'b' },
      { instruction: 'null input', input: '', output: 'o', type: 'kept' },
    ]);
    expect(recs.map((r) => r.where)).toEqual(['line 1', 'line 6']);
    expect(errors).toEqual([
      expect.stringMatching(/line 2: missing field "output"/),
      expect.stringMatching(/line 3: missing field "instruction"/),
      expect.stringMatching(/line 4: field "instruction" must be a string, got number/),
      expect.stringMatching(/line 5: field "input" must be a string, got an array/),
      expect.stringMatching(/line 7: expected an object/),
    ]);
    await expect(collect(readAlpacaRecords(f, { strict: true }))).rejects.toThrow(/line 2: missing field "output"/);
  });
});
