/** The built CLI: help, dry-run, one-line errors, and the API key kept out of output on error paths. */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPrompt, defaultPromptSpec } from '../src/prompt.js';
import { cliTests, runCli } from './helpers/cli.js';

const KEY = 'sk-cllama-CLITEST-0a9b8c7d6e5f4a3b2c1d0e9f';

const serve = cliTests();

const run = (args: string[], env: Record<string, string | undefined> = {}) => runCli(args, { env: { OPENAI_API_KEY: KEY, ...env } });

describe('cllama-crawl', () => {
  it('prints help', async () => {
    const r = await run(['crawl', '--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--out',
      '--count',
      '--concurrency',
      '--model',
      '--base-url',
      '--rpm',
      '--tpm',
      '--seed',
      '--structured',
      '--lang',
      '--price-in',
      '--rouge',
      '--quiet',
    ]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it('dry-run prints the seeded prompt and calls nothing', async () => {
    const r = await run(['dry-run', '--seed', '7', '--lang', 'en', '--index', '3']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(buildPrompt(defaultPromptSpec('en'), 7, 3).text);
    expect(r.stdout).toMatch(/Give 20 items in JSON format/);
  });

  it('fails with one line and no key when the server rejects the key (401 echoing it back)', async () => {
    const server = await serve({ forceStatus: 401, echoAuthInErrors: true });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const r = await run(['--out', join(dir, 'o.jsonl'), '--count', '5', '--base-url', server.url]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^cllama-crawl: the server rejected the API key: check OPENAI_API_KEY/);
    expect(r.stdout + r.stderr).not.toContain(KEY);
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).not.toContain(KEY);
  });

  it('keeps the key out of output when every request fails and the errors echo it', async () => {
    const server = await serve({ forceStatus: 500, echoAuthInErrors: true });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const out = join(dir, 'o.jsonl');
    const r = await run([
      '--out',
      out,
      '--count',
      '5',
      '--base-url',
      server.url,
      '--max-attempts',
      '2',
      '--retry-base-ms',
      '1',
      '--max-failure-streak',
      '3',
      '--concurrency',
      '1',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/gave up: 3 attempts in a row failed/);
    expect(r.stdout + r.stderr).not.toContain(KEY);
    // request 1 used its 2 attempts; request 2 was cut short by giving up after its first
    const failures = readFileSync(`${out}.failures.jsonl`, 'utf8');
    expect(
      failures
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).attempts.length),
    ).toEqual([2, 1]);
    expect(failures).toContain('[REDACTED]');
    expect(failures).not.toContain(KEY);
  });

  it('runs a background crawl with heartbeat status lines, ROUGE-L and a cost estimate', async () => {
    const server = await serve({ seed: 8, itemsPerReply: 5, latencyMs: [150, 250] });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const out = join(dir, 'o.jsonl');
    const r = await run([
      '--out',
      out,
      '--count',
      '30',
      '--base-url',
      server.url,
      '--concurrency',
      '2',
      '--status-every',
      '0.2',
      '--rouge',
      '--price-in',
      '1',
      '--price-out',
      '2',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`done: 30 items in ${out}`);
    expect(r.stderr.split('\n').filter((l) => /items \d+\/30/.test(l)).length).toBeGreaterThanOrEqual(2);
    const ok = Number(/requests ok=(\d+)/.exec(r.stdout)![1]);
    expect(ok).toBe(server.ledger.ok);
    const cost = Number(/cost=\$([\d.]+)/.exec(r.stdout)![1]);
    expect(cost).toBeCloseTo((400 * ok * 1 + 600 * ok * 2) / 1e6, 4);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(30);
  });

  it('--json prints the summary as one JSON object; --max-requests ends with EXIT_INCOMPLETE (3); --quiet leaves stderr empty', async () => {
    const server = await serve({ seed: 4, itemsPerReply: 5, initialFaults: ['429'], retryAfter: '99999' });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const out = join(dir, 'o.jsonl');
    const common = ['--out', out, '--base-url', server.url, '--concurrency', '1', '--retry-max-ms', '50', '--json'];
    const partial = await run([...common, '--count', '20', '--max-requests', '1', '--quiet']);
    expect(partial.code, partial.stderr).toBe(3);
    expect(partial.stderr).toBe(''); // the capped Retry-After notice is a notice: --quiet drops it
    const first = JSON.parse(partial.stdout);
    expect(first).toMatchObject({ complete: false, stopReason: 'max-requests', target: 20, files: { out } });
    expect(partial.stdout.trim().split('\n')).toHaveLength(1);
    const done = await run([...common, '--count', String(first.accepted)]);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ complete: true, stopReason: 'count-reached', accepted: first.accepted, resumedFrom: first.accepted });
  });

  it('rejects bad options with a clear message', async () => {
    const r = await run(['--out', 'x.jsonl', '--count', 'many']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("--count must be a positive integer, got 'many'");
    for (const bad of ['1e99', '1e3', '0x10', '']) {
      const e = await run(['--out', 'x.jsonl', '--count', bad]);
      expect(e.code, bad).toBe(2);
      expect(e.stderr).toContain(`--count must be a positive integer, got '${bad}'`);
    }
    const noKey = await run(['--out', 'x.jsonl', '--count', '3'], { OPENAI_API_KEY: '' });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/set OPENAI_API_KEY/);
  });

  it('keeps a key with trailing whitespace out of stderr when a 401 echoes the bare key', async () => {
    const server = await serve({ forceStatus: 401, echoKeyInErrors: true });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const r = await run(['--out', join(dir, 'o.jsonl'), '--count', '5', '--base-url', server.url], { OPENAI_API_KEY: `${KEY} \n` });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('[REDACTED]');
    expect(r.stdout + r.stderr).not.toContain(KEY);
  });

  it('an empty key with --base-url uses no key (one-line error from the server, not the SDK text)', async () => {
    const server = await serve({ forceStatus: 401 });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const r = await run(['--out', join(dir, 'o.jsonl'), '--count', '5', '--base-url', server.url], { OPENAI_API_KEY: '' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^cllama-crawl: the server rejected the API key/);
    expect(r.stderr).not.toMatch(/Missing credentials/);
    const blank = await run(['--out', join(dir, 'o.jsonl'), '--count', '5'], { OPENAI_API_KEY: '   ' });
    expect(blank.code).toBe(1);
    expect(blank.stderr).toMatch(/^cllama-crawl: set OPENAI_API_KEY/);
  });

  it('refuses a bad --base-url up front, and says out loud when it caps a Retry-After', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crawl-cli-'));
    const bad = await run(['--out', join(dir, 'o.jsonl'), '--count', '5', '--base-url', 'ftp://example.com/v1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe('cllama-crawl: --base-url "ftp://example.com/v1" is not an http(s) URL; give one like http://localhost:8000/v1');
    expect(readdirSync(dir)).toEqual([]);
    const server = await serve({ seed: 3, itemsPerReply: 5, initialFaults: ['429'], retryAfter: '99999' });
    const r = await run(['--out', join(dir, 'o.jsonl'), '--count', '5', '--base-url', server.url, '--retry-max-ms', '100', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^cllama-crawl: the server asked to wait 27\.8 h \(Retry-After\), longer than --retry-max-ms \(100 ms\); waiting 100 ms instead/m);
  });
});
