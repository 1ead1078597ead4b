import { mkdtempSync, promises as fsp, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openTokenizedDataset, writeTokenizedDataset } from '../src/tokenized-dataset.js';

function randomRecords(n: number, seed: number) {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, () => {
    const len = Math.floor(rnd() * 40);
    const inputIds = Array.from({ length: len }, () => Math.floor(rnd() * 49954));
    const cut = Math.floor(rnd() * (len + 1));
    return { inputIds, labels: inputIds.map((t, i) => (i < cut ? -100 : t)) };
  });
}

describe('tokenized dataset on disk', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'cllama-tok-'));

  it('round-trips records with labels, by index, with documented file sizes', async () => {
    const recs = randomRecords(300, 7);
    const dir = path.join(tmp, 'sft');
    async function* gen() {
      yield* recs;
    }
    const meta = await writeTokenizedDataset(dir, gen(), { kind: 'sft', vocabSize: 49954 });
    const numTokens = recs.reduce((a, r) => a + r.inputIds.length, 0);
    expect(meta.count).toBe(300);
    expect(meta.numTokens).toBe(numTokens);
    expect(readdirSync(dir).sort()).toEqual(['labels.bin', 'meta.json', 'offsets.bin', 'tokens.bin']);
    expect(statSync(path.join(dir, 'tokens.bin')).size).toBe(16 + 4 * numTokens);
    expect(statSync(path.join(dir, 'offsets.bin')).size).toBe(16 + 8 * 301);
    expect(statSync(path.join(dir, 'labels.bin')).size).toBe(16 + numTokens);
    // No temp leftovers beside the folder.
    expect(readdirSync(tmp).filter((f) => f.startsWith('.'))).toEqual([]);

    // The bytes are what docs/alpaca-data.md says: header, then int32 LE ids back to back.
    const raw = readFileSync(path.join(dir, 'tokens.bin'));
    expect(raw.toString('ascii', 0, 8)).toBe('CLTOKENS');
    expect(raw.readUInt32LE(8)).toBe(1);
    const firstNonEmpty = recs.findIndex((r) => r.inputIds.length > 0);
    const before = recs.slice(0, firstNonEmpty).length; // all empty
    expect(before).toBe(firstNonEmpty);
    expect(raw.readInt32LE(16)).toBe(recs[firstNonEmpty].inputIds[0]);

    const ds = await openTokenizedDataset(dir);
    expect(ds.length).toBe(300);
    for (const i of [299, 0, 150, 17]) {
      const r = ds.get(i);
      expect(Array.from(r.inputIds)).toEqual(recs[i].inputIds);
      expect(Array.from(r.labels)).toEqual(recs[i].labels);
      expect(ds.lengthOf(i)).toBe(recs[i].inputIds.length);
    }
    expect(() => ds.get(300)).toThrow(/out of range/);
    ds.close();
    expect(() => ds.get(0)).toThrow(/closed/);
  });

  it('stores pre-training blocks without a labels file (labels = ids) and replaces an old dataset', async () => {
    const dir = path.join(tmp, 'sft');
    await writeTokenizedDataset(dir, [{ inputIds: [1, 2, 3] }, { inputIds: [4, 5, 6] }], { kind: 'pt', blockSize: 3 });
    expect(readdirSync(dir).sort()).toEqual(['meta.json', 'offsets.bin', 'tokens.bin']);
    const ds = await openTokenizedDataset(dir);
    expect(ds.meta.info.kind).toBe('pt');
    expect(Array.from(ds.get(1).labels)).toEqual([4, 5, 6]);
    ds.close();
  });

  it('rejects labels it cannot represent and leaves nothing behind', async () => {
    const dir = path.join(tmp, 'bad');
    await expect(writeTokenizedDataset(dir, [{ inputIds: [1, 2], labels: [-100, 3] }])).rejects.toThrow(/label 1 is 3/);
    await expect(writeTokenizedDataset(dir, [{ inputIds: [1, 2], labels: [-100, 2] }, { inputIds: [3] }])).rejects.toThrow(/lacks labels/);
    await expect(writeTokenizedDataset(dir, [{ inputIds: [1, -5] }])).rejects.toThrow(/not a non-negative int32/);
    expect(readdirSync(tmp).filter((f) => f.includes('bad'))).toEqual([]);
  });

  it('refuses to overwrite a folder that is not a dataset', async () => {
    const dir = path.join(tmp, 'other');
    await fsp.mkdir(dir);
    writeFileSync(path.join(dir, 'notes.txt'), 'keep me');
    await expect(writeTokenizedDataset(dir, [{ inputIds: [1] }])).rejects.toThrow(/not a tokenized dataset/);
    expect(readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('keep me');
  });

  it('validates on open: truncation, version, offsets, vocabulary range', async () => {
    const mk = async (name: string) => {
      const dir = path.join(tmp, name);
      await writeTokenizedDataset(
        dir,
        [
          { inputIds: [1, 2, 3], labels: [-100, 2, 3] },
          { inputIds: [9, 9], labels: [9, 9] },
        ],
        { vocabSize: 10 },
      );
      return dir;
    };
    const truncated = await mk('trunc');
    truncateSync(path.join(truncated, 'tokens.bin'), 16 + 4 * 4);
    await expect(openTokenizedDataset(truncated)).rejects.toThrow(/tokens.bin has 32 bytes, expected 36/);

    const versioned = await mk('ver');
    const meta = JSON.parse(readFileSync(path.join(versioned, 'meta.json'), 'utf8'));
    writeFileSync(path.join(versioned, 'meta.json'), JSON.stringify({ ...meta, version: 2 }));
    await expect(openTokenizedDataset(versioned)).rejects.toThrow(/version 2 is not supported/);

    const badOffsets = await mk('off');
    const buf = readFileSync(path.join(badOffsets, 'offsets.bin'));
    buf.writeBigUInt64LE(4n, 16 + 8); // record 0 would end after record 1 starts
    buf.writeBigUInt64LE(3n, 16 + 16);
    writeFileSync(path.join(badOffsets, 'offsets.bin'), buf);
    await expect(openTokenizedDataset(badOffsets)).rejects.toThrow(/offsets.bin/);

    const badMagic = await mk('magic');
    const lb = readFileSync(path.join(badMagic, 'labels.bin'));
    lb.write('XXXXXXXX', 0, 'ascii');
    writeFileSync(path.join(badMagic, 'labels.bin'), lb);
    await expect(openTokenizedDataset(badMagic)).rejects.toThrow(/labels.bin has a bad magic/);

    const vocab = await mk('vocab');
    const tb = readFileSync(path.join(vocab, 'tokens.bin'));
    tb.writeInt32LE(12, 16 + 4 * 3);
    writeFileSync(path.join(vocab, 'tokens.bin'), tb);
    const ds = await openTokenizedDataset(vocab);
    expect(Array.from(ds.get(0).inputIds)).toEqual([1, 2, 3]);
    expect(() => ds.get(1)).toThrow(/outside the vocabulary of 10/);
    ds.close();

    await expect(openTokenizedDataset(path.join(tmp, 'nothing'))).rejects.toThrow(/no meta.json/);
  });
});
