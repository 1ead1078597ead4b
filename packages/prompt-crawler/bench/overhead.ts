/**
 * Crawler overhead: requests/s at --concurrency 32 against an instant local server (a separate
 * process). Every reply carries 20 unique items, so each request is parsed, filtered, deduped, written
 * and fsynced like in a real crawl. Run after building: `npx tsx bench/overhead.ts [requests] [--rouge]`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crawl, defaultFilterOptions, defaultPromptSpec } from '../dist/index.js';

const requests = Number(process.argv[2] ?? 3000);
const rouge = process.argv.includes('--rouge');
const server = spawn(process.execPath, [join(import.meta.dirname, 'instant-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
const url: string = await new Promise((resolve) => server.stdout!.once('data', (d) => resolve(String(d).trim())));
const dir = mkdtempSync(join(tmpdir(), 'crawl-bench-'));
try {
  // warm-up (connections, JIT)
  await crawl({
    out: join(dir, 'warm.jsonl'),
    count: 20 * 200,
    concurrency: 32,
    model: 'm',
    baseURL: url,
    apiKey: 'sk-bench',
    seed: 1,
    structured: false,
    prompt: defaultPromptSpec('zh'),
    filters: defaultFilterOptions('zh'),
    timeoutMs: 10_000,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
  });
  const t0 = performance.now();
  const s = await crawl({
    out: join(dir, 'out.jsonl'),
    count: 20 * requests,
    concurrency: 32,
    model: 'm',
    baseURL: url,
    apiKey: 'sk-bench',
    seed: 2,
    structured: false,
    prompt: defaultPromptSpec('zh'),
    filters: defaultFilterOptions('zh'),
    rougeThreshold: rouge ? 0.7 : undefined,
    timeoutMs: 10_000,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
  });
  const sec = (performance.now() - t0) / 1000;
  console.log(
    `overhead: ${s.requests.succeeded} requests, ${s.accepted} items in ${sec.toFixed(2)} s → ` +
      `${(s.requests.succeeded / sec).toFixed(0)} requests/s, ${(s.accepted / sec).toFixed(0)} items/s ` +
      `(concurrency 32${rouge ? ', ROUGE-L on' : ''}, fsync per group commit)`,
  );
} finally {
  server.kill();
  rmSync(dir, { recursive: true, force: true });
}
