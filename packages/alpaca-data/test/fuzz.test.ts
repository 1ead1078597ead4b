/**
 * Fuzz (issue #14), seeded and bounded: the tokenized-dataset files (meta.json and the binary headers)
 * and Alpaca / pCLUE record files (JSON array and JSON lines) under random truncations and byte flips.
 * Every outcome is data or one of this package's own errors (AlpacaDataError and subclasses) — never a
 * TypeError / RangeError stack trace, never a hang — and reading writes nothing.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertAlpaca, convertPclue } from '../src/converters.js';
import { AlpacaDataError } from '../src/errors.js';
import { readJsonRecords } from '../src/readers.js';
import { checkAlpacaRecord, readAlpacaRecords } from '../src/records.js';
import { openTokenizedDataset, writeTokenizedDataset } from '../src/tokenized-dataset.js';
import { DATA } from './helpers.js';

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

function mutate(src: Uint8Array, next: () => number, focus = src.length): Uint8Array {
  const kind = next();
  const out = Uint8Array.from(src);
  if (kind < 0.3) return out.subarray(0, Math.floor(next() * out.length));
  const flips = 1 + Math.floor(next() * 6);
  for (let i = 0; i < flips; i++) out[Math.floor(next() * Math.min(focus, out.length))] = Math.floor(next() * 256);
  return kind > 0.85 ? out.subarray(0, Math.floor(next() * out.length)) : out;
}

function expectOwn(err: unknown, i: number): void {
  if (!(err instanceof AlpacaDataError)) throw new Error(`case ${i}: ${(err as Error)?.name}: ${(err as Error)?.message}`);
}

const root = mkdtempSync(path.join(tmpdir(), 'alpaca-fuzz-'));

describe('fuzz: tokenized dataset', () => {
  const good = path.join(root, 'good');
  beforeAll(async () => {
    const next = mulberry32(7);
    const records = Array.from({ length: 30 }, () => {
      const n = 3 + Math.floor(next() * 20);
      const inputIds = Array.from({ length: n }, () => Math.floor(next() * 1000));
      return { inputIds, labels: inputIds.map((id, k) => (k < n / 2 ? -100 : id)) };
    });
    await writeTokenizedDataset(good, records, { kind: 'sft', vocabSize: 1000 });
  });

  it('300 datasets with one mutated file: opened and read whole, or an AlpacaDataError; nothing written', async () => {
    const files = readdirSync(good).sort();
    expect(files).toContain('meta.json');
    const next = mulberry32(1406);
    const t0 = Date.now();
    let opened = 0;
    for (let i = 0; i < 300; i++) {
      const dir = path.join(root, `ds${i}`);
      mkdirSync(dir);
      for (const f of files) copyFileSync(path.join(good, f), path.join(dir, f));
      const victim = files[Math.floor(next() * files.length)]!;
      // binary files: flips in the 32-byte header and the first records; meta.json anywhere
      writeFileSync(path.join(dir, victim), mutate(new Uint8Array(readFileSync(path.join(good, victim))), next, victim === 'meta.json' ? Infinity : 96));
      try {
        const ds = await openTokenizedDataset(dir);
        try {
          for (let r = 0; r < ds.length; r++) ds.get(r);
          opened++;
        } finally {
          ds.close();
        }
      } catch (err) {
        expectOwn(err, i);
      }
      expect(readdirSync(dir).sort()).toEqual(files);
    }
    expect(opened).toBeLessThan(300);
    expect(Date.now() - t0).toBeLessThan(10_000); // a hang guard
  });
});

describe('fuzz: Alpaca and pCLUE records', () => {
  const alpaca = new TextEncoder().encode(JSON.stringify(JSON.parse(readFileSync(path.join(DATA, 'alpaca_zh_demo.json'), 'utf8')).slice(0, 12), null, 1));
  const alpacaLines = new TextEncoder().encode(
    JSON.parse(readFileSync(path.join(DATA, 'alpaca_zh_demo.json'), 'utf8'))
      .slice(0, 12)
      .map((r: unknown) => JSON.stringify(r))
      .join('\n'),
  );
  const pclue = new TextEncoder().encode(readFileSync(path.join(DATA, 'pCLUE_train_9.json'), 'utf8').split('\n').slice(0, 12).join('\n'));

  for (const [name, src, convert] of [
    ['Alpaca JSON array', alpaca, convertAlpaca],
    ['Alpaca JSON lines', alpacaLines, convertAlpaca],
    ['pCLUE JSON lines', pclue, convertPclue],
  ] as const) {
    it(`100 mutated ${name} files: records, per-record errors, or an AlpacaDataError; nothing written`, async () => {
      const next = mulberry32(name.length * 97);
      const dir = path.join(root, name.replace(/ /g, '-'));
      mkdirSync(dir);
      const t0 = Date.now();
      for (let i = 0; i < 100; i++) {
        const file = path.join(dir, `f${i}.json`);
        writeFileSync(file, mutate(src, next));
        try {
          for await (const item of readJsonRecords(file)) {
            if (!item.ok) {
              expectOwn(item.error, i);
              continue;
            }
            const r = convert(item.value);
            if (typeof r !== 'string') for (const rec of r) expect(typeof checkAlpacaRecord(rec) === 'string' || typeof rec.output === 'string').toBe(true);
          }
          for await (const { record } of readAlpacaRecords(file, { onError: (e) => expectOwn(e, i) })) expect(typeof record.instruction).toBe('string');
        } catch (err) {
          expectOwn(err, i);
        }
      }
      expect(readdirSync(dir)).toHaveLength(100);
      expect(Date.now() - t0).toBeLessThan(10_000); // a hang guard: ~1-2 s on an idle machine
    });
  }
});
