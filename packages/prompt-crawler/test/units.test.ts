import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../src/client.js';
import { defaultFilterOptions, ItemFilter, normalizeInstruction, textUnits } from '../src/filters.js';
import { buildPrompt, defaultPromptSpec, ZH_TASKS, ZH_TOPICS } from '../src/prompt.js';
import { RateLimiter } from '../src/ratelimit.js';
import { Redactor } from '../src/redact.js';

describe('prompt generator', () => {
  it('follows the original structure: 10 of ~80 topics, 10 of 14 tasks, random limits, 20 items', () => {
    expect(ZH_TOPICS.length).toBeGreaterThanOrEqual(80);
    expect(ZH_TASKS.length).toBe(14);
    const spec = defaultPromptSpec('zh');
    const seenLimits = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const p = buildPrompt(spec, 1, i);
      expect(new Set(p.topics).size).toBe(10);
      expect(new Set(p.tasks).size).toBe(10);
      for (const t of p.topics) expect(p.text).toContain(t);
      expect(p.inputMaxChars).toBeGreaterThanOrEqual(80);
      expect(p.inputMaxChars).toBeLessThanOrEqual(120);
      expect(p.outputMaxChars).toBeGreaterThanOrEqual(128);
      expect(p.outputMaxChars).toBeLessThanOrEqual(512);
      expect(p.text).toContain(`不超过${p.inputMaxChars}字`);
      expect(p.text).toContain('20条JSON格式数据');
      seenLimits.add(p.outputMaxChars);
    }
    expect(seenLimits.size).toBeGreaterThan(20);
    expect(buildPrompt(spec, 1, 3).text).toBe(buildPrompt(spec, 1, 3).text);
    expect(buildPrompt(spec, 1, 3).text).not.toBe(buildPrompt(spec, 2, 3).text);
  });
});

describe('filters', () => {
  it('counts CJK characters and words as units', () => {
    expect(textUnits('请翻译 hello world 123')).toBe(6);
  });
  it('applies Stanford rules', () => {
    const en = new ItemFilter(defaultFilterOptions('en'));
    const ok = { instruction: 'Explain why the sky is blue.', input: '', output: 'Rayleigh scattering.' };
    expect(en.check(ok)).toBeUndefined();
    expect(en.check({ ...ok, instruction: 'Describe this image in detail please' })).toBe('blacklisted');
    expect(en.check({ ...ok, instruction: 'Summarize the profile of the author' })).toBeUndefined(); // "file" only as a word
    expect(en.check({ ...ok, instruction: 'Write a program that sorts numbers' })).toBe('write-a-program');
    expect(en.check({ ...ok, instruction: 'Too short' })).toBe('instruction-too-short');
    expect(en.check({ ...ok, instruction: '"Quote" this sentence for me' })).toBe('starts-with-punctuation');
    expect(en.check({ ...ok, instruction: '解释一下为什么天空是蓝色的' })).toBe('non-ascii-start');
    const zh = new ItemFilter(defaultFilterOptions('zh'));
    expect(zh.check({ ...ok, instruction: '解释一下为什么天空是蓝色的' })).toBeUndefined();
    expect(zh.check({ ...ok, instruction: '请根据这张图片写一段描述' })).toBe('blacklisted');
    expect(zh.check({ ...ok, instruction: '写一首关于音乐的小诗' })).toBeUndefined();
    expect(zh.check({ ...ok, instruction: '解释一下为什么天空是蓝色的', output: '' })).toBe('output-too-short');
  });
  it('normalizes instructions for dedupe', () => {
    expect(normalizeInstruction('翻译这句话。')).toBe(normalizeInstruction(' 翻译这句话 '));
    expect(normalizeInstruction('Translate  THIS!')).toBe(normalizeInstruction('translate this'));
    expect(normalizeInstruction('ＡＢＣ，')).toBe('abc');
  });
});

describe('redaction and Retry-After', () => {
  it('redacts the key and bearer tokens', () => {
    const r = new Redactor(['sk-secret-123456']);
    expect(r.redact('key sk-secret-123456 and Authorization: Bearer abcdefghij')).toBe('key [REDACTED] and Authorization: Bearer [REDACTED]');
  });
  it('reads retry-after-ms, seconds and HTTP dates', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), now)).toBe(3000);
    expect(retryAfterMs(new Headers({}))).toBeUndefined();
  });
});

describe('rate limiter', () => {
  it('holds requests/min after the burst allowance', async () => {
    const lim = new RateLimiter({ rpm: 1200 }); // 20/s, burst 120
    const t0 = Date.now();
    for (let i = 0; i < 150; i++) await lim.acquire(0);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(1400); // 30 beyond the burst at 20/s
    expect(elapsed).toBeLessThan(4000);
  });
  it('holds tokens/min and charges real usage on settle', async () => {
    const lim = new RateLimiter({ tpm: 60_000 }); // 1000 tokens/s, burst 6000
    const t0 = Date.now();
    await lim.acquire(6000);
    lim.settle(6000, 7000); // the request really used 1000 more
    await lim.acquire(500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
  });
  it('pauses everyone until a Retry-After deadline', async () => {
    const lim = new RateLimiter({});
    const t0 = Date.now();
    lim.pauseUntil(t0 + 300);
    await Promise.all([lim.acquire(1), lim.acquire(1)]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });
});

describe('readJsonLines', () => {
  it('streams a multi-MiB file across chunk boundaries (multi-byte characters split) and cuts a torn tail', async () => {
    const { mkdtempSync, writeFileSync, readFileSync, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readJsonLines } = await import('../src/store.js');
    const dir = mkdtempSync(join(tmpdir(), 'jsonl-'));
    const path = join(dir, 'big.jsonl');
    const items = Array.from({ length: 12_000 }, (_, i) => ({
      instruction: `第${i}条：解释“内卷”${'长'.repeat(i % 97)}`,
      input: '',
      output: '好'.repeat(40 + (i % 13)),
    }));
    const body = items.map((i) => JSON.stringify(i) + '\n').join('');
    writeFileSync(path, body + '{"instruction": "被截断的一');
    expect(statSync(path).size).toBeGreaterThan(3 << 20);
    const got: unknown[] = [];
    const r = await readJsonLines(path, true, (rec) => got.push(rec));
    expect(r.count).toBe(items.length);
    expect(got).toEqual(items);
    expect(r.torn?.text).toBe('{"instruction": "被截断的一');
    expect(readFileSync(path, 'utf8')).toBe(body);
  });
});
