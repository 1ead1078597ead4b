/**
 * Tokenizing throughput: this package's TypeScript encoder next to Python sentencepiece (the C++
 * library) and sentencepiece-js (C++ compiled to wasm), line by line, on held-out Chinese lines
 * (zh_corpus.txt lines 74,701+) and English (c4_demo.jsonl + wiki_demo.txt).
 *
 * Usage: npx tsx bench/encode.ts [model] [--repeat N]
 * Data comes from ../shared/data beside the repository (falls back to test-fixtures/data).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SentencePieceProcessor } from 'sentencepiece-js';
import { SentencePieceEncoder } from '../src/encoder/index.js';
import { parseModelProto } from '../src/proto.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
// CI layout: <clone>/ with shared/ beside it; a git worktree under <dir>/wt/<name> also looks two up.
const shared = [path.resolve(repoRoot, '../shared/data'), path.resolve(repoRoot, '../../shared/data')].find(existsSync) ?? '';
const fixtures = path.join(repoRoot, 'test-fixtures');
const args = process.argv.slice(2);
const repeatAt = args.indexOf('--repeat');
const repeat = repeatAt >= 0 ? Number(args[repeatAt + 1]) : 3;
const modelPath = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--repeat') ?? path.join(fixtures, 'tokenizers/merged_reference.model');

interface Corpus {
  name: string;
  /** Timed text. */
  lines: string[];
  /** Different text of the same kind, encoded (untimed) before the timed pass to fill the segment memo. */
  warmup: string[];
}

function chineseCorpus(): Corpus {
  const corpus = path.join(shared, 'zh_corpus.txt');
  if (existsSync(corpus)) {
    const all = readFileSync(corpus, 'utf8').split('\n');
    return { name: 'zh_corpus.txt held out (lines 74,701+)', lines: all.slice(74_700).filter((l) => l.length > 0), warmup: all.slice(0, 30_000) };
  }
  const lines = readFileSync(path.join(fixtures, 'data/zh_heldout_3000.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  return { name: 'test-fixtures zh_heldout_3000.txt', lines, warmup: alpaca('alpaca_zh_demo.json') };
}

function alpaca(file: string): string[] {
  const records = JSON.parse(readFileSync(path.join(fixtures, 'data', file), 'utf8')) as Array<Record<string, string>>;
  return records.flatMap((r) => [r.instruction, r.input, r.output]).filter((t) => t && t.length > 0);
}

function englishCorpus(): Corpus {
  const c4 = shared && existsSync(path.join(shared, 'c4_demo.jsonl')) ? path.join(shared, 'c4_demo.jsonl') : path.join(fixtures, 'data/c4_demo.jsonl');
  const lines = readFileSync(c4, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string);
  const wiki = path.join(shared, 'wiki_demo.txt');
  const hasWiki = shared !== '' && existsSync(wiki);
  if (hasWiki)
    lines.push(
      ...readFileSync(wiki, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );
  return { name: hasWiki ? 'c4_demo.jsonl + wiki_demo.txt' : 'c4_demo.jsonl', lines, warmup: alpaca('alpaca_en_demo.json') };
}

function chars(lines: string[]): number {
  let n = 0;
  for (const l of lines) n += [...l].length;
  return n;
}

/** Wall-clock seconds of fn; the CPU seconds it used go to lastCpuSeconds (steadier on a busy machine). */
let lastCpuSeconds = 0;
function timeIt(fn: () => void): number {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  lastCpuSeconds = (cpu.user + cpu.system) / 1e6;
  return wall;
}

function pythonCharsPerSecond(model: string, lines: string[]): { wall: number; cpu: number } | undefined {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cllama-bench-'));
  try {
    const file = path.join(dir, 'lines.json');
    writeFileSync(file, JSON.stringify(lines));
    const script = `
import json, sys, time
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = json.load(open(sys.argv[2], encoding='utf-8'))
n = sum(len(l) for l in lines)
best = best_cpu = 0
for _ in range(${repeat}):
    t = time.perf_counter()
    c = time.process_time()
    for l in lines: sp.encode(l)
    best = max(best, n / (time.perf_counter() - t))
    best_cpu = max(best_cpu, n / (time.process_time() - c))
print(best, best_cpu)`;
    const [wall, cpu] = execFileSync(python, ['-c', script, model, file], { encoding: 'utf8' }).trim().split(' ').map(Number);
    return { wall, cpu };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const proto = parseModelProto(new Uint8Array(readFileSync(modelPath)));
const spp = new SentencePieceProcessor();
await spp.load(modelPath);
const fmt = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x / 1e6).toFixed(2)} M`);
console.log(`model ${path.relative(repoRoot, modelPath)} (${proto.pieces.length} pieces), best of ${repeat} runs, chars = Unicode code points, chars/s`);
console.log(
  '| text | lines | chars | ours, memo empty | ours, memo warmed on other text | Python sentencepiece | sentencepiece-js | ours / Python | same, by CPU time | ids identical to sentencepiece-js |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
const encoder = new SentencePieceEncoder(proto);
for (const { name, lines, warmup } of [chineseCorpus(), englishCorpus()]) {
  const n = chars(lines);
  let ours: number[][] = [];
  let cold = 0;
  let warm = 0;
  let coldCpu = 0;
  let warmCpu = 0;
  for (let r = 0; r < repeat; r++) {
    encoder.clearCache();
    cold = Math.max(cold, n / timeIt(() => (ours = lines.map((l) => encoder.encode(l)))));
    coldCpu = Math.max(coldCpu, n / lastCpuSeconds);
    encoder.clearCache();
    for (const l of warmup) encoder.encode(l);
    warm = Math.max(warm, n / timeIt(() => lines.forEach((l) => encoder.encode(l))));
    warmCpu = Math.max(warmCpu, n / lastCpuSeconds);
  }
  let js = 0;
  let wasm: number[][] = [];
  for (let r = 0; r < Math.min(repeat, 2); r++) js = Math.max(js, n / timeIt(() => (wasm = lines.map((l) => spp.encodeIds(l)))));
  const identical = ours.filter((ids, i) => ids.length === wasm[i].length && ids.every((x, k) => x === wasm[i][k])).length;
  const py = pythonCharsPerSecond(modelPath, lines);
  const ratio = py === undefined ? 'n/a' : `${(warm / py.wall).toFixed(1)}× (${(cold / py.wall).toFixed(1)}× memo empty)`;
  const cpuRatio = py === undefined ? 'n/a' : `${(warmCpu / py.cpu).toFixed(1)}× (${(coldCpu / py.cpu).toFixed(1)}× memo empty)`;
  console.log(
    `| ${name} | ${lines.length} | ${n} | ${fmt(cold)} | ${fmt(warm)} | ${fmt(py?.wall)} | ${fmt(js)} | ${ratio} | ${cpuRatio} | ${identical}/${lines.length} |`,
  );
}
