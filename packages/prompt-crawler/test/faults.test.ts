/**
 * Hostile servers and bad settings (issue #14): no wait longer than the user allowed, no stall longer
 * than --timeout, the key redacted in every form it is sent in, bad --base-url / empty key refused up
 * front, and an existing --out that is not the crawler's JSON-lines never "repaired".
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { crawl, type CrawlOptions } from '../src/crawler.js';
import { ConfigError, FatalApiError, OutputFileError } from '../src/errors.js';
import { Redactor } from '../src/redact.js';
import { crawlOptions } from './helpers/options.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const KEY = 'sk-cllama-FAULT-key-1e2d3c4b5a69788776655';

let server: FaultServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function options(out: string, url: string, over: Partial<CrawlOptions> = {}): CrawlOptions {
  return crawlOptions(out, url, KEY, over);
}

const tmp = () => mkdtempSync(join(tmpdir(), 'crawl-faults-'));

describe('waits are bounded by the user', () => {
  for (const [what, retryAfter] of [
    ['seconds', '99999'],
    ['an HTTP date', 'Wed, 21 Oct 2099 07:28:00 GMT'],
  ] as const) {
    it(`caps a Retry-After in ${what} at --retry-max-ms and says so`, async () => {
      server = await startFaultServer({ seed: 5, itemsPerReply: 5, initialFaults: ['429'], retryAfter });
      const notices: string[] = [];
      const t0 = Date.now();
      const s = await crawl(options(join(tmp(), 'out.jsonl'), server.url, { onNotice: (l) => notices.push(l) }));
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(s.accepted).toBe(5);
      expect(server.ledger.requests).toBe(2);
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatch(/Retry-After.*longer than --retry-max-ms \(50 ms\); waiting 50 ms instead/);
    });
  }

  it('a server wait within --retry-max-ms is honoured in full', async () => {
    server = await startFaultServer({ seed: 5, itemsPerReply: 5, initialFaults: ['429'], retryAfterMs: '400' });
    const notices: string[] = [];
    await crawl(
      options(join(tmp(), 'out.jsonl'), server.url, { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1000 }, onNotice: (l) => notices.push(l) }),
    );
    const t = server.ledger.requestTimes;
    expect(t[1] - t[0]).toBeGreaterThanOrEqual(380);
    expect(notices).toEqual([]);
  });

  it('times out a reply that sends headers and a few body bytes, then stalls', async () => {
    server = await startFaultServer({ seed: 5, itemsPerReply: 5, initialFaults: ['stall'] });
    const dir = tmp();
    const t0 = Date.now();
    const s = await crawl(options(join(dir, 'out.jsonl'), server.url, { timeoutMs: 400 }));
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(server.ledger.faults.stall).toBe(1);
    expect(s.accepted).toBe(5);
    expect(s.attempts.failed).toBe(1);
  });

  it('a reply stalling on every attempt ends as a recorded failure of kind timeout', async () => {
    server = await startFaultServer({ seed: 5, initialFaults: ['stall', 'stall'] });
    const dir = tmp();
    const out = join(dir, 'out.jsonl');
    const s = await crawl(options(out, server.url, { timeoutMs: 300, maxRequests: 1, retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } }));
    expect(s.requests.failed).toBe(1);
    const f = JSON.parse(readFileSync(`${out}.failures.jsonl`, 'utf8'));
    expect(f.attempts.map((a: { kind: string }) => a.kind)).toEqual(['timeout', 'timeout']);
  });
});

describe('the API key', () => {
  for (const [what, raw] of [
    ['trailing whitespace', `${KEY}  \n`],
    ['leading whitespace', `\t ${KEY}`],
  ] as const) {
    it(`never appears when the env value has ${what} and a 401 echoes the bare key`, async () => {
      server = await startFaultServer({ forceStatus: 401, echoKeyInErrors: true });
      const dir = tmp();
      const err = await crawl(options(join(dir, 'out.jsonl'), server.url, { apiKey: raw })).catch((e) => e);
      expect(err).toBeInstanceOf(FatalApiError);
      expect(err.message).toContain('[REDACTED]');
      expect(err.message).not.toContain(KEY);
      expect([...server.ledger.authHeadersSeen]).toEqual([`Bearer ${KEY}`]);
      for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).not.toContain(KEY);
    });
  }

  it('the redactor covers the raw, trimmed, Bearer and JSON-escaped forms', () => {
    const odd = 'sk-"quoted"\\key-123456';
    const r = new Redactor([` ${KEY}\n`, odd]);
    expect(r.redact(`a ${KEY} b`)).toBe('a [REDACTED] b');
    expect(r.redact(`Authorization: Bearer ${KEY}`)).toBe('Authorization: Bearer [REDACTED]');
    expect(r.redact(JSON.stringify({ m: odd }))).not.toContain('quoted');
    expect(r.redact(odd)).toBe('[REDACTED]');
  });

  it('an empty or blank key is refused up front when no --base-url is given, nothing written', async () => {
    const dir = tmp();
    for (const apiKey of ['', '   ']) {
      const err = await crawl(options(join(dir, 'out.jsonl'), '', { apiKey, baseURL: undefined })).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/OPENAI_API_KEY is empty/);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('--base-url', () => {
  for (const url of ['not a url', 'file:///etc/passwd', 'ftp://example.com/v1', 'localhost:8000/v1']) {
    it(`refuses ${JSON.stringify(url)} before sending or writing anything`, async () => {
      const dir = tmp();
      const t0 = Date.now();
      const err = await crawl(options(join(dir, 'out.jsonl'), url)).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/--base-url .* is not an http\(s\) URL/);
      expect(Date.now() - t0).toBeLessThan(500);
      expect(readdirSync(dir)).toEqual([]);
    });
  }
});

describe('an existing --out that is not the crawler JSON-lines', () => {
  const alpaca = JSON.stringify([{ instruction: '介绍一下北京', input: '', output: '北京是中国的首都。' }]);
  for (const [what, text] of [
    ['a one-line Alpaca JSON array', alpaca],
    ['a one-line JSON object that is not an item', '{"data": [1, 2, 3]}'],
    ['plain text', 'hello world'],
    ['a pretty-printed JSON array', JSON.stringify(JSON.parse(alpaca), null, 2)],
  ] as const) {
    it(`is refused untouched: ${what}`, async () => {
      server = await startFaultServer({ seed: 2 });
      const dir = tmp();
      const out = join(dir, 'data.json');
      writeFileSync(out, text);
      const err = await crawl(options(out, server.url)).catch((e) => e);
      expect(err).toBeInstanceOf(OutputFileError);
      expect(err.message).toMatch(/not (a|an) .*JSON-lines|is not an \{instruction, input, output\} item|is not valid JSON/);
      expect(readFileSync(out, 'utf8')).toBe(text);
      expect(readdirSync(dir)).toEqual(['data.json']);
      expect(server.ledger.requests).toBe(0);
    });
  }

  it('a last item line that only lacks its newline is kept, not moved to the rejects', async () => {
    server = await startFaultServer({ seed: 2, itemsPerReply: 5 });
    const dir = tmp();
    const out = join(dir, 'out.jsonl');
    const item = { instruction: '介绍一下北京', input: '', output: '北京是中国的首都。' };
    writeFileSync(out, JSON.stringify(item));
    const s = await crawl(options(out, server.url, { count: 3 }));
    expect(s.resumedFrom).toBe(1);
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual(item);
    expect(lines).toHaveLength(3);
  });
});
