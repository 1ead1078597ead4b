/**
 * Hostile servers, round 2 (issue #21): a server that fails every request — bodies that stall until
 * --timeout cuts them, 500 forever, connections reset, 429 forever, 200s with nothing usable in them
 * (junk, refusals, empty lists) — makes the built CLI give up after
 * a bounded failure streak with ONE line saying why (the last error, redacted), exit 1, and every item
 * already written kept whole; a reply body without end is cut at --max-reply-mb with the process's
 * memory bounded; a key no HTTP header can carry is refused up front (exit 2), nothing sent.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crawl } from '../src/crawler.js';
import { defaultPromptSpec } from '../src/prompt.js';
import { type BinRun, expectOneLine, literal } from '../../core/test/helpers/run-bin.js';
import { cliTests, lines, runCli } from './helpers/cli.js';
import type { FaultPlan, FaultServer, ScriptedFault } from './helpers/fault-server.js';
import { crawlOptions } from './helpers/options.js';

const KEY = 'sk-cllama-GIVEUP-7c1e5a9b3d2f4e6a8b0c1d2e';

const serve = cliTests();

const tmp = () => mkdtempSync(join(tmpdir(), 'crawl-giveup-'));

/** Two good replies of 5 items, then `fault` on every request. */
async function failingServer(fault: ScriptedFault, extra: FaultPlan = {}) {
  return serve({ seed: 4, itemsPerReply: 5, initialFaults: ['ok', 'ok'], everyRequest: fault, echoKeyInErrors: true, ...extra });
}

function crawlArgs(out: string, url: string, extra: string[] = []): string[] {
  return [
    '--out',
    out,
    '--count',
    '100',
    '--base-url',
    url,
    '--concurrency',
    '4',
    // long enough for a good reply on a loaded machine; the stall cases shorten it
    '--timeout',
    '10',
    '--max-attempts',
    '3',
    '--retry-base-ms',
    '1',
    '--retry-max-ms',
    '5',
    '--quiet',
    '--status-every',
    '3600',
    ...extra,
  ];
}

/** Exit 1 with exactly one line on stderr, matching `why`; returns the line. */
function expectGaveUp(r: BinRun, why: RegExp) {
  expectOneLine(r, why);
  return r.lines[0];
}

const jsonl = (path: string) => lines(readFileSync(path, 'utf8')).map((l) => JSON.parse(l));

/** The output holds exactly the items the good replies served, each line whole. */
function expectKeptItems(out: string, s: FaultServer, n: number) {
  const text = readFileSync(out, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  const items = jsonl(out);
  expect(items).toHaveLength(n);
  for (const it of items) expect(s.ledger.served.get(it.instruction)).toEqual(it);
}

describe('a server that fails every request: the crawl gives up', () => {
  const cases: Array<[ScriptedFault, string, RegExp]> = [
    ['stall', 'timeout', /last error: timeout: no complete reply within 2000 ms \(--timeout\)/],
    ['500', 'http', /last error: http 500: 500 The server had an error while processing your request: Incorrect API key provided: \[REDACTED\]\./],
    ['reset', 'connection', /last error: connection: connection error: (other side closed|.*ECONNRESET)/],
  ];
  for (const [fault, kind, last] of cases) {
    it(`${fault}: after --max-failure-streak attempts, one line, exit 1, the items kept`, async () => {
      const server = await failingServer(fault);
      const dir = tmp();
      const out = join(dir, 'out.jsonl');
      const timeout = fault === 'stall' ? ['--timeout', '2'] : [];
      const r = await runCli(crawlArgs(out, server.url, ['--max-failure-streak', '6', ...timeout]), { env: { OPENAI_API_KEY: KEY } });
      const line = expectGaveUp(r, /^cllama-crawl: gave up: 6 attempts in a row failed \(--max-failure-streak 6\); /);
      expect(line).toMatch(last);
      expect(line).toContain(`10/100 items are kept in ${out}`);
      expect(r.stdout + r.stderr).not.toContain(KEY);
      // bounded: the 2 good replies, the 6 failed attempts of the streak, at most 3 more in flight
      expect(server.ledger.ok).toBe(2);
      expect(server.ledger.requests).toBeGreaterThanOrEqual(8);
      expect(server.ledger.requests).toBeLessThanOrEqual(2 + 6 + 3);
      expectKeptItems(out, server, 10);
      // every failed attempt that ended (not one cut by the give-up itself) is in the failures file
      const attempts = jsonl(`${out}.failures.jsonl`).flatMap((f) => f.attempts);
      expect(attempts.length).toBeGreaterThanOrEqual(6);
      expect(attempts.length).toBeLessThanOrEqual(server.ledger.requests - 2);
      for (const a of attempts) expect(a.kind).toBe(kind);
      for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).not.toContain(KEY);
      expect(readdirSync(dir)).not.toContain('out.jsonl.lock');
    });
  }

  it('the default streak is 50 attempts', async () => {
    const server = await failingServer('500');
    const out = join(tmp(), 'out.jsonl');
    const r = await runCli(crawlArgs(out, server.url), { env: { OPENAI_API_KEY: KEY } });
    expectGaveUp(r, /^cllama-crawl: gave up: 50 attempts in a row failed \(--max-failure-streak 50\)/);
    expect(server.ledger.requests).toBeLessThanOrEqual(2 + 50 + 3);
    expectKeptItems(out, server, 10);
  });

  it('--max-failure-time bounds a streak of stalls in time', async () => {
    const server = await failingServer('stall');
    const out = join(tmp(), 'out.jsonl');
    const r = await runCli(crawlArgs(out, server.url, ['--timeout', '1', '--max-failure-time', '3', '--concurrency', '2']), {
      env: { OPENAI_API_KEY: KEY },
    });
    expectGaveUp(r, /^cllama-crawl: gave up: attempts kept failing for \d+ s with no successful reply \(--max-failure-time 3\); last error: timeout/);
    // each attempt lasts at least the 1 s timeout: 2 workers fit at most 5 each into the streak's 3 s and the one that starts it
    expect(server.ledger.requests).toBeLessThanOrEqual(2 + 2 * 5);
    expectKeptItems(out, server, 10);
  });

  it('429s do not count in the streak (the server is pacing us), but the time bound ends them', async () => {
    const server = await failingServer('429');
    const out = join(tmp(), 'out.jsonl');
    const r = await runCli(crawlArgs(out, server.url, ['--max-failure-streak', '3', '--max-failure-time', '1']), { env: { OPENAI_API_KEY: KEY } });
    expectGaveUp(r, /gave up: attempts kept failing for \d+ s with no successful reply \(--max-failure-time 1\); last error: http 429/);
    expect(server.ledger.faults.s429).toBeGreaterThan(3);
    expectKeptItems(out, server, 10);
  });

  // 5 failed attempts, a good reply, 5 failed, … never 6 in a row: the crawl finishes (30 failed attempts in all)
  const streaks: Array<[string, ScriptedFault[]]> = [
    ['500s', ['500', '500', '500', '500', '500', 'ok']],
    ['500s and 200s that keep no item, mixed', ['500', 'junk', '500', 'junk', 'junk', 'ok']],
  ];
  for (const [what, cycle] of streaks) {
    it(`a reply that keeps an item ends the streak (${what})`, async () => {
      const server = await serve({ seed: 4, itemsPerReply: 5, initialFaults: Array.from({ length: 6 }, () => cycle).flat() });
      const out = join(tmp(), 'out.jsonl');
      const r = await runCli(crawlArgs(out, server.url, ['--count', '30', '--concurrency', '1', '--max-failure-streak', '6']), {
        env: { OPENAI_API_KEY: KEY },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`done: 30 items in ${out}`);
      expect(server.ledger.faults.s500 + server.ledger.faults.junk).toBe(30);
    });
  }
});

describe('a server that answers 200 with nothing usable, forever', () => {
  it('gives up after --max-failure-streak replies that kept no item: one line, exit 1, bounded requests, not retried, the items kept whole', async () => {
    // prose, a refusal, [], {"items": []}, an item the filters drop, items already kept — in turn, forever;
    // without the streak counting them the crawl would go on until --max-requests (exit 3)
    const server = await failingServer('junk');
    const dir = tmp();
    const out = join(dir, 'out.jsonl');
    const r = await runCli(crawlArgs(out, server.url, ['--max-failure-streak', '6', '--max-requests', '40']), { env: { OPENAI_API_KEY: KEY } });
    const line = expectGaveUp(
      r,
      /^cllama-crawl: gave up: 6 attempts in a row failed \(--max-failure-streak 6\); last error: no-items: a reply \(\d+ characters, finish_reason stop\) kept no item \((rejected: [a-z-]+ \d+(, [a-z-]+ \d+)*|it held none)\)\. /,
    );
    expect(line).toContain(`10/100 items are kept in ${out}; check the server, --base-url and --model, then run the same command again to continue`);
    expect(line).toMatch(new RegExp(`\\(what the replies held: ${literal(`${out}.rejects.jsonl`)}\\)$`));
    expect(r.stdout + r.stderr).not.toContain(KEY);
    // bounded: the 2 good replies, the 6 junk replies of the streak, at most 3 more in flight
    expect(server.ledger.ok).toBe(2);
    expect(server.ledger.faults.junk).toBeGreaterThanOrEqual(6);
    expect(server.ledger.requests).toBeLessThanOrEqual(2 + 6 + 3);
    expectKeptItems(out, server, 10);
    // not retried: every reply is one request of one attempt in the journal, the junk ones keeping nothing
    const journal = jsonl(`${out}.journal.jsonl`);
    expect(journal.length).toBeGreaterThanOrEqual(2 + 6);
    for (const j of journal) expect(j.attempts).toBe(1);
    expect(journal.filter((j) => j.accepted > 0).map((j) => j.accepted)).toEqual([5, 5]);
    // the junk is in the rejects file; the failures file holds at most the requests cut by the give-up
    const reasons = new Set(jsonl(`${out}.rejects.jsonl`).map((x) => x.reason));
    for (const why of ['no-items-found', 'instruction-too-short', 'duplicate']) expect(reasons).toContain(why);
    const failed = existsSync(`${out}.failures.jsonl`) ? jsonl(`${out}.failures.jsonl`) : [];
    expect(failed.length).toBeLessThanOrEqual(3);
    for (const f of failed) expect(f.attempts.map((a: { kind: string }) => a.kind)).toEqual(['aborted']);
    expect(readdirSync(dir)).not.toContain('out.jsonl.lock');
  });
});

describe('a reply that keeps nothing once --count is reached', () => {
  it('does not give up the finished crawl', async () => {
    // two requests in flight (the prompt asks for 1 item each); the first brings 5 items and reaches --count,
    // the second's junk arrives after it: with a streak bound of 1 it must not turn the finished crawl into a give-up
    const server = await serve({ seed: 4, itemsPerReply: 5, initialFaults: ['ok', 'junk'] });
    let n = 0;
    const slowSecond: typeof fetch = async (input, init) => {
      const i = n++;
      const res = await fetch(input, init);
      if (i === 1) await new Promise((r) => setTimeout(r, 300));
      return res;
    };
    const out = join(tmp(), 'out.jsonl');
    const s = await crawl(
      crawlOptions(out, server.url, KEY, {
        concurrency: 2,
        prompt: { ...defaultPromptSpec('zh'), itemsPerRequest: 1 },
        timeoutMs: 10_000,
        retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
        maxFailureStreak: 1,
        fetch: slowSecond,
      }),
    );
    expect(s.complete).toBe(true);
    expect(s.accepted).toBe(5);
    expect(server.ledger.faults.junk).toBe(1);
    expect(jsonl(`${out}.journal.jsonl`).map((j) => j.accepted)).toEqual([5, 0]);
  });
});

describe('a reply without end', () => {
  it('is cut at --max-reply-mb (default 8 MiB), fails its request, and memory stays bounded', async () => {
    // without the cap the client buffers each reply whole: the server's 256 MiB limit, two at a time
    const server = await serve({ seed: 4, initialFaults: ['ok'], everyRequest: 'endless', endlessLimitBytes: 256 << 20 });
    const out = join(tmp(), 'out.jsonl');
    const r = await runCli(crawlArgs(out, server.url, ['--timeout', '60', '--concurrency', '2', '--max-failure-streak', '3']), {
      env: { OPENAI_API_KEY: KEY },
    });
    // the crawler's peak RSS: its ~100 MiB baseline plus a few capped replies, far from 2 × 256 MiB
    expect(r.peakKb).toBeGreaterThan(0);
    expect(r.peakKb).toBeLessThan(320 * 1024);
    // what the server got to send: a little over 8 MiB per reply (socket buffers), far from 256 MiB
    expect(server.ledger.faults.endless).toBeLessThanOrEqual(3 + 1);
    expect(server.ledger.endlessBytes).toBeLessThan(4 * 24 * (1 << 20));
    expectGaveUp(
      r,
      /^cllama-crawl: gave up: 3 attempts in a row failed \(--max-failure-streak 3\); last error: too-large: reply larger than 8 MiB \(--max-reply-mb\); the request was aborted/,
    );
    // an over-size reply is not retried: each failed request has one attempt
    const failures = jsonl(`${out}.failures.jsonl`);
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const f of failures) expect(f.attempts.map((a: { kind: string }) => a.kind)).toEqual(['too-large']);
    expectKeptItems(out, server, 5);
  });

  it('a Content-Length above the cap is refused before the body is read', async () => {
    // 'stall' declares content-length 4096 and then never finishes: refused at once, not after the 10 s timeout
    const server = await serve({ seed: 4, initialFaults: ['stall'] });
    const out = join(tmp(), 'out.jsonl');
    const s = await crawl(
      crawlOptions(out, server.url, KEY, { timeoutMs: 10_000, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 }, maxReplyBytes: 2048, maxRequests: 1 }),
    );
    expect(s.requests.failed).toBe(1);
    expect(server.ledger.requests).toBe(1);
    const f = jsonl(`${out}.failures.jsonl`);
    expect(f[0].attempts).toEqual([{ attempt: 1, kind: 'too-large', message: 'reply larger than 2 KiB (--max-reply-mb); the request was aborted' }]);
  });
});

describe('an API key no HTTP header can carry', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['a newline inside', `${KEY.slice(0, 20)}\n${KEY.slice(20)}`, /contains a control character/],
    ['a \\x01 inside', `${KEY.slice(0, 20)}\x01${KEY.slice(20)}`, /contains a control character/],
    ['an escape code', `\x1b[200~${KEY}`, /contains a control character/],
    ['a curly quote', `“${KEY}”`, /contains a character outside ASCII/],
  ];
  for (const [what, key, why] of bad) {
    it(`is refused up front (${what}): one line, exit 2, nothing sent or written, the key not printed`, async () => {
      const server = await serve({ seed: 4 });
      const dir = tmp();
      const r = await runCli(crawlArgs(join(dir, 'out.jsonl'), server.url), { env: { OPENAI_API_KEY: key } });
      expectOneLine(r, /^cllama-crawl: OPENAI_API_KEY contains .*set it again to the bare key \(the key is not printed\)$/, 2);
      expect(r.lines[0]).toMatch(why);
      expect(r.stdout + r.stderr).not.toContain(KEY.slice(0, 20));
      expect(r.stdout + r.stderr).not.toContain(KEY.slice(20));
      expect(server.ledger.requests).toBe(0);
      expect(readdirSync(dir)).toEqual([]);
    });
  }
});
