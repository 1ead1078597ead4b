import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleaningReason, nearKey } from '../src/clean.js';
import { convertFile } from '../src/convert-file.js';
import { convertCrawler, convertIdentity, convertTranslation, TRANSLATION_INSTRUCTIONS } from '../src/converters.js';
import { formatMixReport, mixSources, parseSourceSpec } from '../src/mixer.js';
import { Xoshiro128 } from '@cllama/core';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { buildSftExample, type AlpacaRecord } from '../src/sft.js';
import { DATA, MERGED_MODEL } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cllama-mix-'));
const readJsonl = (f: string) =>
  readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('converters', () => {
  it('pCLUE keeps all 705 records, with type, input → instruction, target → output', async () => {
    const src = path.join(DATA, 'pCLUE_train_9.json');
    const out = path.join(tmp, 'pclue.jsonl');
    const s = await convertFile('pclue', src, out);
    expect(s).toMatchObject({ read: 705, written: 705, skipped: 0 });
    const recs = readJsonl(out);
    const orig = readFileSync(src, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.length).toBe(705);
    recs.forEach((r, i) => {
      expect(r.instruction).toBe(orig[i].input);
      expect(r.output).toBe(orig[i].target);
      expect(r.input).toBe('');
      expect(r.type).toBe(orig[i].type);
    });
  });

  it('translation gives both directions with varied, seeded instructions', () => {
    const rng = Xoshiro128.fromSeed(1);
    const recs = Array.from({ length: 40 }, (_, i) => convertTranslation({ english: ` Hello ${i} `, chinese: `你好${i}` }, rng));
    for (const r of recs) {
      if (typeof r === 'string') throw new Error(r);
      expect(r.length).toBe(2);
      expect(r[0]).toMatchObject({ input: expect.stringMatching(/^Hello \d+$/), output: expect.stringMatching(/^你好/) });
      expect(TRANSLATION_INSTRUCTIONS.en2zh).toContain(r[0].instruction);
      expect(r[1]).toMatchObject({ input: expect.stringMatching(/^你好/), output: expect.stringMatching(/^Hello/) });
      expect(TRANSLATION_INSTRUCTIONS.zh2en).toContain(r[1].instruction);
    }
    const used = new Set(recs.flatMap((r) => (typeof r === 'string' ? [] : r.map((x) => x.instruction))));
    expect(used.size).toBeGreaterThan(8);
    expect(convertTranslation({ english: 'a' }, rng)).toMatch(/missing field "chinese"/);
    expect(convertTranslation({ english: 'a', chinese: 3 }, rng)).toMatch(/"chinese" must be a string/);
    expect(convertTranslation({ english: 'a', chinese: 'b' }, rng, 'zh2en')).toHaveLength(1);
  });

  it('crawler items: trimmed, placeholder inputs emptied, Chinese keys accepted', () => {
    expect(convertCrawler({ instruction: ' 写诗 ', input: '<noinput>', output: ' 春天 ' })).toEqual([{ instruction: '写诗', input: '', output: '春天' }]);
    expect(convertCrawler({ 指令: '翻译', 输入: '无输入', 输出: 'x' })).toEqual([{ instruction: '翻译', input: '', output: 'x' }]);
    expect(convertCrawler({ instruction: 'a', input: 'real input', output: 'b' })).toEqual([{ instruction: 'a', input: 'real input', output: 'b' }]);
    expect(convertCrawler({ instruction: 'a' })).toMatch(/missing field "output"/);
  });

  it('identity fills placeholders and refuses to leave one unfilled', async () => {
    const out = path.join(tmp, 'id.jsonl');
    const s = await convertFile('identity', path.join(DATA, 'identity.json'), out, { values: { name: '小羊驼', author: 'cllama' } });
    expect(s.written).toBe(91);
    const text = readFileSync(out, 'utf8');
    expect(text).not.toMatch(/\{\{/);
    expect(text).toContain('小羊驼');
    expect(convertIdentity({ instruction: 'hi', output: 'I am {{name}}' }, {})).toMatch(/\{\{name\}\} has no value/);
    await expect(convertFile('identity', path.join(DATA, 'identity.json'), path.join(tmp, 'id2.jsonl'), { strict: true })).rejects.toThrow(
      /record 1 .*\{\{name\}\}/,
    );
  });
});

describe('cleaning', () => {
  it('names the rule a record breaks', () => {
    const r = (output: string, instruction = 'Do it', input = '') => cleaningReason({ instruction, input, output });
    expect(r('fine')).toBeUndefined();
    expect(r('  ')).toBe('empty-output');
    expect(r('x', ' ')).toBe('empty-instruction');
    expect(r('As an AI language model, I cannot do that.')).toBe('refusal');
    expect(r('作为一个ＡＩ语言模型，我不能')).toBe('refusal');
    expect(r('bad \uFFFD byte')).toBe('broken-encoding');
    expect(r('cafÃ© au lait')).toBe('broken-encoding');
    expect(r('x'.repeat(5000))).toBe('output-too-long');
    expect(cleaningReason({ instruction: 'a', output: 'x'.repeat(50) }, { maxOutputChars: 10 })).toBe('output-too-long');
    expect(nearKey({ instruction: '写一首诗。', input: '', output: 'a' })).toBe(nearKey({ instruction: '写一首 诗！', input: '', output: 'b' }));
    expect(nearKey({ instruction: 'Write A poem', output: '' })).toBe(nearKey({ instruction: 'write a poem.', output: '' }));
  });
});

describe('mixer', () => {
  const a = path.join(tmp, 'a.jsonl');
  const b = path.join(tmp, 'b.json');
  const recsA = [
    ...Array.from({ length: 30 }, (_, i) => ({ instruction: `任务 ${i}`, input: '', output: `答案 ${i}` })),
    { instruction: '任务 0', input: '', output: '答案 0' }, // exact duplicate
    { instruction: '任务 1。', input: '', output: '另一个答案' }, // near duplicate
    { instruction: '空', input: '', output: '' }, // empty output
    { instruction: 'x', output: 'As an AI language model, no.' }, // refusal
  ];
  writeFileSync(a, recsA.map((r) => JSON.stringify(r)).join('\n') + '\n{"instruction": 3}\nnot json\n');
  writeFileSync(b, JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ instruction: `Task ${i}`, input: i % 2 ? 'ctx' : '', output: `Answer ${i}` }))));

  it('is reproducible byte for byte, and its report adds up', async () => {
    const sources = [parseSourceSpec(`zh=${a}:20`), parseSourceSpec(`en=${b}:25`)];
    const o1 = path.join(tmp, 'm1.jsonl');
    const o2 = path.join(tmp, 'm2.jsonl');
    const r1 = await mixSources(sources, o1, { seed: 42 });
    await mixSources(sources, o2, { seed: 42 });
    expect(readFileSync(o1)).toEqual(readFileSync(o2));
    const o3 = path.join(tmp, 'm3.jsonl');
    await mixSources(sources, o3, { seed: 43 });
    expect(readFileSync(o1).equals(readFileSync(o3))).toBe(false);

    const [zh, en] = r1.sources;
    expect(zh).toMatchObject({ read: 36, invalid: 2, pool: 30, requested: 20, sampled: 20, distinct: 20, shortfall: 0 });
    expect(zh.dropped).toMatchObject({ 'duplicate-exact': 1, 'duplicate-near': 1, 'empty-output': 1, refusal: 1 });
    expect(en).toMatchObject({ read: 10, pool: 10, requested: 25, sampled: 10, shortfall: 15 });
    for (const s of r1.sources) {
      const dropped = Object.values(s.dropped).reduce((x, y) => x + y, 0);
      expect(s.read).toBe(s.invalid + dropped + s.pool);
      expect(s.histogram.reduce((x, y) => x + y, 0)).toBe(s.sampled);
    }
    const lines = readJsonl(o1);
    expect(lines.length).toBe(r1.total.sampled);
    expect(r1.total.sampled).toBe(30);
    // Sampled without replacement: no line twice; every line is from a source's pool.
    expect(new Set(lines.map((l) => JSON.stringify(l))).size).toBe(30);
    expect(lines.filter((l) => l.instruction.startsWith('Task')).length).toBe(10);
    const md = formatMixReport(r1);
    expect(md).toContain(`| **total** | | 46 | 2 | 4 | 40 | 45 | 30 | | 15 |`);
    expect(r1.errors).toEqual([expect.stringMatching(/a.jsonl line 35: missing field "output"/), expect.stringMatching(/a.jsonl line 36: not valid JSON/)]);
  });

  it('samples with replacement to fill a count, still seeded', async () => {
    const o = path.join(tmp, 'rep.jsonl');
    const r = await mixSources([{ name: 'en', file: b, count: 25 }], o, { seed: 7, replacement: true, shuffle: false });
    expect(r.sources[0]).toMatchObject({ sampled: 25, shortfall: 0 });
    expect(r.sources[0].distinct).toBeLessThanOrEqual(10);
    expect(readJsonl(o).length).toBe(25);
  });

  it('measures lengths in tokens of the SFT example when given a tokenizer', async () => {
    const tok = await loadTokenizer(MERGED_MODEL);
    const o = path.join(tmp, 'tok.jsonl');
    const r = await mixSources([{ name: 'en', file: b, count: 10 }], o, { seed: 1, tokenizer: tok });
    expect(r.unit).toBe('tokens');
    const recs = readJsonl(o) as AlpacaRecord[];
    const lengths = recs.map((rec) => buildSftExample(rec, tok, { maxSeqLength: 1e9 }).inputIds.length);
    expect(r.sources[0].maxLength).toBe(Math.max(...lengths));
    expect(r.sources[0].histogram[0]).toBe(lengths.filter((l) => l < 64).length);
    expect(r.sources[0].histogram.reduce((x, y) => x + y, 0)).toBe(10);
    expect(formatMixReport(r)).toContain('## Length of the sampled records (tokens)');
  });

  it('rejects bad specs', async () => {
    expect(() => parseSourceSpec('nocount.json')).toThrow(/name=file:count/);
    expect(parseSourceSpec('t=x.jsonl:500K')).toEqual({ name: 't', file: 'x.jsonl', count: 500000 });
    await expect(
      mixSources(
        [
          { name: 'x', file: a, count: 1 },
          { name: 'x', file: b, count: 1 },
        ],
        path.join(tmp, 'z'),
        { seed: 1 },
      ),
    ).rejects.toThrow(/used twice/);
  });
});
