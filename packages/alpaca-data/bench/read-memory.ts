/**
 * Streamed reading in bounded memory: writes a large JSON array (and the same records as JSON lines)
 * by repeating the Alpaca-zh demo records, then reads it back with readAlpacaRecords and reports
 * throughput and the peak resident memory. Run by hand:
 *
 *   npx tsx packages/alpaca-data/bench/read-memory.ts [--mb 400]
 */
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAlpacaRecords } from '../src/records.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const i = process.argv.indexOf('--mb');
const targetBytes = Number(i >= 0 ? process.argv[i + 1] : 400) * 1e6;
const records = JSON.parse(readFileSync(path.join(repoRoot, 'test-fixtures/data/alpaca_zh_demo.json'), 'utf8')) as object[];
const tmp = mkdtempSync(path.join(tmpdir(), 'cllama-readbench-'));

async function write(file: string, array: boolean): Promise<number> {
  const out = createWriteStream(file);
  let bytes = 0;
  let n = 0;
  const put = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  if (array) await put('[\n');
  while (bytes < targetBytes) {
    const line = JSON.stringify(records[n % records.length]);
    await put(array ? `${n ? ',\n' : ''}${line}` : `${line}\n`);
    bytes += Buffer.byteLength(line) + 2;
    n++;
  }
  if (array) await put('\n]\n');
  await new Promise<void>((r) => out.end(() => r()));
  return n;
}

for (const [name, array] of [
  ['JSON array', true],
  ['JSON lines', false],
] as const) {
  const file = path.join(tmp, array ? 'big.json' : 'big.jsonl');
  const n = await write(file, array);
  const size = statSync(file).size;
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  let count = 0;
  const t = performance.now();
  for await (const _ of readAlpacaRecords(file)) {
    if ((++count & 4095) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const sec = (performance.now() - t) / 1000;
  console.log(
    `${name}: ${(size / 1e6).toFixed(0)} MB, ${count}/${n} records in ${sec.toFixed(1)} s (${(size / 1e6 / sec).toFixed(0)} MB/s); ` +
      `RSS before ${(rssBefore / 1e6).toFixed(0)} MB, peak ${(peak / 1e6).toFixed(0)} MB`,
  );
  rmSync(file);
}
rmSync(tmp, { recursive: true, force: true });
