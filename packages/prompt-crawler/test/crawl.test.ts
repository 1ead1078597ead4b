import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { crawl, type CrawlOptions } from '../src/crawler.js';
import { FatalApiError, LockedError } from '../src/errors.js';
import { normalizeInstruction } from '../src/filters.js';
import { hashString as hash32 } from '@cllama/core';
import { lcsLengthDP, rougeLF, rougeTokens } from '../src/rouge.js';
import { OutputStore } from '../src/store.js';
import { crawlOptions } from './helpers/options.js';
import { startFaultServer, type FaultPlan, type FaultServer } from './helpers/fault-server.js';

export const KEY = 'sk-cllama-TEST-key-7f3a9c21e4b8d6055aa1b2c3';

let server: FaultServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function lines<T = any>(path: string): T[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));
}

function options(out: string, url: string, over: Partial<CrawlOptions> = {}): CrawlOptions {
  return crawlOptions(out, url, KEY, { count: 50, concurrency: 8, retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 40 }, ...over });
}

function allFilesText(dir: string): string {
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

describe('crawl against a fault-injecting chat-completions server', () => {
  it('reaches exactly --count unique items and accounts for every fault', async () => {
    const plan: FaultPlan = {
      seed: 3,
      itemsPerReply: 5,
      p429: 0.07,
      retryAfterMs: '15',
      p500: 0.07,
      pReset: 0.05,
      pSlow: 0.04,
      slowMs: 5000,
      pBadBody: 0.04,
      pMalformedItem: 0.08,
      pTruncated: 0.25,
      pDuplicate: 0.2,
      doomModulo: 11,
      echoAuthInErrors: true,
      echoAuthInContent: true,
      initialFaults: ['429', '500', 'reset', 'slow', 'badBody', '500', 'slow', 'reset'],
    };
    server = await startFaultServer(plan);
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const out = join(dir, 'out.jsonl');
    // the timeout is generous so that only the injected slow replies time out, even on a loaded machine
    const s = await crawl(options(out, server.url, { count: 150, timeoutMs: 1500 }));
    const L = server.ledger;

    // exactly N unique items, each one the server really served
    const items = lines(out);
    expect(items.length).toBe(150);
    expect(s.accepted).toBe(150);
    expect(s.complete).toBe(true);
    expect(new Set(items.map((i) => normalizeInstruction(i.instruction))).size).toBe(150);
    for (const it of items) {
      const served = L.served.get(it.instruction);
      expect(served).toBeDefined();
      expect(it).toEqual({ ...served, output: served!.output.replace(`Bearer ${KEY}`, 'Bearer [REDACTED]') });
    }

    // every HTTP request is an attempt; every injected fault is a failed attempt
    const injected = L.faults.s429 + L.faults.s500 + L.faults.reset + L.faults.slow + L.faults.badBody + L.faults.doomed;
    for (const k of ['s429', 's500', 'reset', 'slow', 'badBody', 'doomed'] as const) expect(L.faults[k]).toBeGreaterThan(0);
    expect(s.attempts.total).toBe(L.requests);
    expect(s.attempts.failed).toBe(injected);
    expect(s.requests.succeeded).toBe(L.ok);

    // failed requests: in the failures file, with all their attempts
    const failures = lines(`${out}.failures.jsonl`);
    expect(failures.length).toBe(s.requests.failed);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f.attempts.length).toBe(4);
    const failedHashes = new Set(failures.map((f) => `0:${hash32(f.prompt)}`));
    for (const [key, attempts] of L.doomedAttempts) if (attempts === 4) expect(failedHashes.has(key)).toBe(true);
    expect(s.requests.started).toBe(s.requests.succeeded + s.requests.failed);

    // journal and rejects add up
    const journal = lines(`${out}.journal.jsonl`);
    expect(journal.length).toBe(s.requests.succeeded);
    expect(journal.reduce((a, j) => a + j.accepted, 0)).toBe(150);
    expect(journal.reduce((a, j) => a + j.parsed, 0)).toBe(s.items.parsed);
    const rejects = lines(`${out}.rejects.jsonl`);
    const byReason: Record<string, number> = {};
    for (const r of rejects) byReason[r.reason] = (byReason[r.reason] ?? 0) + 1;
    expect(byReason).toEqual(s.items.rejected);
    expect(byReason['truncated']).toBe(L.truncatedItems);
    expect(byReason['malformed-json']).toBe(L.malformedItems);
    expect(byReason['duplicate']).toBeGreaterThan(0);
    const itemRejects = rejects.filter((r) => r.item).length;
    expect(s.items.parsed).toBe(150 + itemRejects);

    // usage: 400 + 600 tokens per successful reply
    expect(s.usage.promptTokens).toBe(400 * L.ok);
    expect(s.usage.completionTokens).toBe(600 * L.ok);

    // the key was sent, echoed back in errors and content, and written nowhere
    expect([...L.authHeadersSeen]).toEqual([`Bearer ${KEY}`]);
    const written = allFilesText(dir);
    expect(written).not.toContain(KEY);
    expect(written).toContain('[REDACTED]');
    expect(JSON.stringify(s)).not.toContain(KEY);
  });

  it('uses structured output when the server supports it, and falls back to free text when not', async () => {
    server = await startFaultServer({ seed: 6, itemsPerReply: 5 });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const s = await crawl(options(join(dir, 'a.jsonl'), server.url, { count: 20, structured: true, concurrency: 2 }));
    expect(s.accepted).toBe(20);
    expect(server.ledger.structuredRequests).toBe(server.ledger.requests);
    await server.close();
    server = await startFaultServer({ seed: 6, itemsPerReply: 5, rejectStructured: true });
    const t = await crawl(options(join(dir, 'b.jsonl'), server.url, { count: 20, structured: true, concurrency: 1 }));
    expect(t.accepted).toBe(20);
    expect(server.ledger.structuredRequests).toBe(1); // one 400, then free text for the rest of the run
    expect(t.attempts.failed).toBe(1);
    expect(t.requests.failed).toBe(0);
  });

  it('honours Retry-After (seconds) on 429 before sending again', async () => {
    server = await startFaultServer({ seed: 5, itemsPerReply: 5, initialFaults: ['429'], retryAfter: '1' });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    // a server wait within --retry-max-ms is honoured whatever the backoff would be (longer ones: faults.test.ts)
    const s = await crawl(
      options(join(dir, 'out.jsonl'), server.url, { count: 5, concurrency: 1, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2000 } }),
    );
    expect(s.accepted).toBe(5);
    const t = server.ledger.requestTimes;
    expect(t.length).toBe(2);
    expect(t[1] - t[0]).toBeGreaterThanOrEqual(950);
    expect(s.attempts.failed).toBe(1);
  });

  it('stops on 401 with an actionable error that does not contain the key', async () => {
    server = await startFaultServer({ forceStatus: 401, echoAuthInErrors: true });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const err = await crawl(options(join(dir, 'out.jsonl'), server.url)).catch((e) => e);
    expect(err).toBeInstanceOf(FatalApiError);
    expect(err.message).toMatch(/OPENAI_API_KEY/);
    expect(err.message).toContain('[REDACTED]');
    expect(String(err.message) + String(err.stack)).not.toContain(KEY);
    expect(allFilesText(dir)).not.toContain(KEY);
  });

  it('resumes after a torn last line: truncates it, records it, and ends with exactly N items', async () => {
    server = await startFaultServer({ seed: 9, itemsPerReply: 4 });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const out = join(dir, 'out.jsonl');
    const first = [
      { instruction: '请写一首关于秋天的短诗', input: '', output: '秋风起，落叶黄。' },
      { instruction: '解释什么是机器学习', input: '', output: '让计算机从数据中学习规律的方法。' },
    ];
    writeFileSync(out, first.map((i) => JSON.stringify(i) + '\n').join('') + '{"instruction": "半截的指令", "inp');
    const s = await crawl(options(out, server.url, { count: 10 }));
    const items = lines(out);
    expect(items.length).toBe(10);
    expect(items.slice(0, 2)).toEqual(first);
    expect(s.resumedFrom).toBe(2);
    expect(s.tornLinesRepaired).toBe(1);
    const torn = lines(`${out}.rejects.jsonl`).filter((r) => r.reason === 'torn-line-on-resume');
    expect(torn).toEqual([{ request: -1, reason: 'torn-line-on-resume', raw: '{"instruction": "半截的指令", "inp' }]);
    // a second run with the same --count has nothing to do
    const again = await crawl(options(out, server.url, { count: 10 }));
    expect(again.requests.started).toBe(0);
    expect(lines(out).length).toBe(10);
  });

  it('refuses a second crawler on the same --out, and takes over a stale lock', async () => {
    server = await startFaultServer({ seed: 2, itemsPerReply: 5 });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const out = join(dir, 'out.jsonl');
    const held = await OutputStore.open(out);
    expect(held.itemCount).toBe(0);
    await expect(crawl(options(out, server.url, { count: 5 }))).rejects.toBeInstanceOf(LockedError);
    await held.store.close();
    writeFileSync(`${out}.lock`, '999999999\n'); // a pid that does not exist
    const s = await crawl(options(out, server.url, { count: 5 }));
    expect(s.accepted).toBe(5);
  });

  it('dedupes against what an earlier run kept (exact and ROUGE-L) after a restart', async () => {
    const kept = { instruction: '请用三句话介绍一下长城的历史和修建原因', input: '', output: '长城始建于春秋战国时期。' };
    server = await startFaultServer({
      seed: 12,
      itemsPerReply: 5,
      firstReplies: [
        [
          { instruction: '请用三句话，介绍一下长城的历史和修建原因！', input: '', output: '重复。' }, // same after normalization
          { instruction: '请用三句话介绍一下故宫的历史和修建原因', input: '', output: '相似。' }, // ROUGE-L 34/38
          { instruction: '列举三种常见的编程语言', input: '', output: 'Python、Java、C。' },
        ],
      ],
    });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const out = join(dir, 'out.jsonl');
    writeFileSync(out, JSON.stringify(kept) + '\n');
    const s = await crawl(options(out, server.url, { count: 6, concurrency: 1, rougeThreshold: 0.7 }));
    expect(s.resumedFrom).toBe(1);
    const items = lines(out);
    expect(items.length).toBe(6);
    expect(items[0]).toEqual(kept);
    expect(items[1].instruction).toBe('列举三种常见的编程语言');
    const rejects = lines(`${out}.rejects.jsonl`);
    expect(rejects.find((r) => r.reason === 'duplicate')?.item.output).toBe('重复。');
    const similar = rejects.find((r) => r.reason === 'rouge-similar');
    expect(similar?.item.output).toBe('相似。');
    expect(similar?.score).toBeCloseTo((2 * 17) / (19 + 19), 3); // 19 characters each, 17 in common
  });

  it('drops near-duplicates by ROUGE-L when asked', async () => {
    server = await startFaultServer({ seed: 4, itemsPerReply: 5, pNearDuplicate: 0.3 });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-'));
    const out = join(dir, 'out.jsonl');
    const s = await crawl(options(out, server.url, { count: 40, rougeThreshold: 0.7 }));
    const items = lines(out);
    expect(items.length).toBe(40);
    expect(s.items.rejected['rouge-similar']).toBeGreaterThan(0);
    // brute force: no kept pair is above the threshold
    const vocab = new Map<string, number>();
    const ids = (t: string) =>
      Int32Array.from(rougeTokens(t), (w) => {
        if (!vocab.has(w)) vocab.set(w, vocab.size);
        return vocab.get(w)!;
      });
    for (let i = 0; i < items.length; i++) {
      const a = ids(items[i].instruction);
      for (let j = 0; j < i; j++) {
        const b = ids(items[j].instruction);
        expect(rougeLF(lcsLengthDP(a, b), a.length, b.length)).toBeLessThanOrEqual(0.7);
      }
    }
  });
});
