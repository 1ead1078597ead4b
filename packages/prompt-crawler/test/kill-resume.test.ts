/**
 * The built CLI is killed with SIGKILL at random points of a crawl and restarted with the same command
 * until it finishes; the output must end with exactly N unique items, each one the server really
 * served, with every permanently failed request in the failures file and the API key nowhere.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinRun } from '../../core/test/helpers/run-bin.js';
import { normalizeInstruction } from '../src/filters.js';
import { hashString as hash32, mulberry32 } from '@cllama/core';
import { ensureBuilt, runCli } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const KEY = 'sk-cllama-KILLTEST-5d1c9e7a3b2f8a64c0d2e1f3';

beforeAll(ensureBuilt);

let server: FaultServer;
afterAll(async () => server?.close());

function fileSize(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}

/** Runs the crawler; with `killAfterProgress`, SIGKILLs it `delayMs` after --out first grows. */
function run(args: string[], killAfterProgress?: { out: string; delayMs: number }): Promise<BinRun & { output: string }> {
  let poll: NodeJS.Timeout | undefined;
  return runCli(args, {
    env: { OPENAI_API_KEY: KEY },
    onSpawn: (child) => {
      if (!killAfterProgress) return;
      const start = fileSize(killAfterProgress.out);
      poll = setInterval(() => {
        if (fileSize(killAfterProgress.out) > start) {
          clearInterval(poll);
          setTimeout(() => child.kill('SIGKILL'), killAfterProgress.delayMs);
        }
      }, 10);
    },
  }).then((r) => {
    clearInterval(poll);
    return { ...r, output: r.stdout + r.stderr };
  });
}

function jsonl(path: string): any[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));
}

describe('SIGKILL at random points, then restart', () => {
  it('ends with exactly N unique served items and every failure accounted for', async () => {
    const N = 400;
    server = await startFaultServer({
      seed: 21,
      itemsPerReply: 4,
      latencyMs: [20, 80],
      p429: 0.05,
      retryAfterMs: '20',
      p500: 0.05,
      pReset: 0.03,
      pSlow: 0.03,
      slowMs: 800,
      pBadBody: 0.03,
      pMalformedItem: 0.05,
      pTruncated: 0.2,
      pDuplicate: 0.2,
      doomModulo: 9,
      echoAuthInErrors: true,
      echoAuthInContent: true,
    });
    const dir = mkdtempSync(join(tmpdir(), 'crawl-kill-'));
    const out = join(dir, 'out.jsonl');
    const args = [
      '--out',
      out,
      '--count',
      String(N),
      '--base-url',
      server.url,
      '--model',
      'm',
      '--concurrency',
      '8',
      '--timeout',
      '0.3',
      '--max-attempts',
      '3',
      '--retry-base-ms',
      '5',
      '--retry-max-ms',
      '30',
      '--seed',
      '5',
      '--status-every',
      '0',
    ];
    const rng = mulberry32(99);
    const runs: Array<{ output: string }> = [];
    let kills = 0;
    for (let round = 0; round < 6; round++) {
      server.generation = round;
      const r = await run(args, { out, delayMs: Math.floor(rng() * 250) });
      runs.push(r);
      if (r.signal === 'SIGKILL') kills++;
      else break;
      // whatever a kill left: complete lines are valid items, at most the last line is torn
      const text = readFileSync(out, 'utf8');
      const complete = text.slice(0, text.lastIndexOf('\n') + 1);
      for (const l of complete.split('\n').filter(Boolean)) expect(() => JSON.parse(l)).not.toThrow();
    }
    expect(kills).toBeGreaterThanOrEqual(3);
    server.generation = 100;
    const final = await run(args);
    runs.push(final);
    expect(final.code, final.output).toBe(0);
    expect(final.output).toContain(`done: ${N} items`);

    // exactly N unique items, all served by the server
    const items = jsonl(out);
    expect(items.length).toBe(N);
    expect(new Set(items.map((i) => normalizeInstruction(i.instruction))).size).toBe(N);
    for (const it of items) {
      const served = server.ledger.served.get(it.instruction);
      expect(served, it.instruction).toBeDefined();
      expect(it).toEqual({ ...served, output: served!.output.replace(`Bearer ${KEY}`, 'Bearer [REDACTED]') });
    }

    // failures: every record has all its attempts; the final run recorded every prompt it gave up on
    const failures = jsonl(`${out}.failures.jsonl`);
    for (const f of failures) {
      expect(f.attempts.length).toBe(3);
      for (const a of f.attempts) expect(a.message).not.toContain(KEY);
    }
    const recorded = new Set(failures.map((f) => hash32(f.prompt)));
    let finalDoomed = 0;
    for (const [key, attempts] of server.ledger.doomedAttempts) {
      const [gen, h] = key.split(':').map(Number);
      if (gen === 100 && attempts >= 3) {
        finalDoomed++;
        expect(recorded.has(h)).toBe(true);
      }
    }
    expect(failures.length).toBeGreaterThanOrEqual(finalDoomed);
    expect(failures.length).toBeGreaterThan(0);

    // torn lines repaired on restart are recorded
    const tornRecorded = jsonl(`${out}.rejects.jsonl`).filter((r) => r.reason === 'torn-line-on-resume').length;
    expect(tornRecorded).toBeLessThanOrEqual(kills);

    // the journal never claims more than the output holds
    const journal = jsonl(`${out}.journal.jsonl`);
    expect(journal.reduce((a, j) => a + j.accepted, 0)).toBeLessThanOrEqual(N);

    // the key: sent on every request, written nowhere, printed nowhere
    expect([...server.ledger.authHeadersSeen]).toEqual([`Bearer ${KEY}`]);
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).not.toContain(KEY);
    for (const r of runs) expect(r.output).not.toContain(KEY);
    expect(existsSync(`${out}.lock`)).toBe(false);
  });
});
