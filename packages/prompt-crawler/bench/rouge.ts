/**
 * ROUGE-L dedupe at a million kept instructions. Synthetic Chinese instructions: character
 * frequencies Zipf-distributed over 3,500 characters (like real Chinese text), common instruction
 * openings, 10% near-duplicates made by editing an earlier one.
 *  1. sequential crawl-like run (findSimilar + add) over the first --seq items: throughput;
 *  2. index N kept items (what a resume does: add only) — time and memory;
 *  3. per-query latency against the N-item index for fresh queries (half near-duplicates), checked
 *     against a brute-force scan of all N items (same decisions) whose per-query time is also shown.
 * `npx tsx bench/rouge.ts [N=1000000] [--seq 50000] [--queries 1000] [--brute 20]`
 */
import { RougeLIndex } from '../src/rouge.js';
import { mulberry32 } from '../src/rng.js';

const N = Number(process.argv[2] ?? 1_000_000);
const arg = (name: string, dflt: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const SEQ = arg('--seq', 50_000);
const QUERIES = arg('--queries', 1000);
const BRUTE = arg('--brute', 20);
const rng = mulberry32(2024);

// Zipf(s=1) over 3,500 characters via inverse CDF table
const V = 3500;
const cdf = new Float64Array(V);
let acc = 0;
for (let k = 0; k < V; k++) cdf[k] = acc += 1 / (k + 1);
for (let k = 0; k < V; k++) cdf[k] /= acc;
const char = () => {
  const u = rng();
  let lo = 0;
  let hi = V - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return String.fromCharCode(0x4e00 + ((lo * 7919) % 20000));
};
const openings = [
  '请解释',
  '写一篇关于',
  '翻译下面的句子',
  '总结以下内容',
  '请列举',
  '如何',
  '为什么',
  '给出一个',
  '分析一下',
  '请推荐',
  '判断下列说法',
  '用一句话描述',
  '比较',
  '请写一封',
  '改写这段话',
];
const generated: string[] = [];
function next(): string {
  if (generated.length > 100 && rng() < 0.1) {
    // near-duplicate: edit 1–3 characters of an earlier one
    const chars = [...generated[Math.floor(rng() * generated.length)]];
    const edits = 1 + Math.floor(rng() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rng() * chars.length);
      const op = rng();
      if (op < 0.4) chars[at] = char();
      else if (op < 0.7) chars.splice(at, 0, char());
      else if (chars.length > 4) chars.splice(at, 1);
    }
    return chars.join('');
  }
  const len = 6 + Math.floor(rng() * 30);
  let s = rng() < 0.4 ? openings[Math.floor(rng() * openings.length)] : '';
  for (let i = 0; i < len; i++) s += char();
  generated.push(s);
  return s;
}

const texts: string[] = [];
for (let i = 0; i < N; i++) texts.push(next());
const queries: string[] = [];
for (let i = 0; i < QUERIES; i++) queries.push(next());

// 1. crawl-like sequential run
{
  const index = new RougeLIndex(0.7);
  let rejected = 0;
  const t0 = performance.now();
  for (let i = 0; i < SEQ; i++) {
    const ids = index.tokenIds(texts[i]);
    if (index.findSimilar(ids)) rejected++;
    else index.add(ids);
  }
  const ms = performance.now() - t0;
  console.log(
    `sequential findSimilar+add of ${SEQ}: ${(ms / 1000).toFixed(1)} s (${((ms * 1000) / SEQ).toFixed(0)} µs/item avg), ` +
      `rejected ${rejected}; per query: ${(index.stats.postingsScanned / index.stats.queries).toFixed(0)} postings, ${(index.stats.candidatesChecked / index.stats.queries).toFixed(0)} LCS`,
  );
}

// 2. index N kept items (resume)
global.gc?.();
const mem0 = process.memoryUsage();
const index = new RougeLIndex(0.7);
let t0 = performance.now();
for (let i = 0; i < N; i++) index.add(index.tokenIds(texts[i]));
const buildMs = performance.now() - t0;
global.gc?.();
const mem = process.memoryUsage();
console.log(
  `indexing ${N} kept instructions (resume): ${(buildMs / 1000).toFixed(1)} s; process RSS ${(mem.rss / 2 ** 20).toFixed(0)} MiB (was ${(mem0.rss / 2 ** 20).toFixed(0)} MiB before the index; includes the ${N} texts)`,
);

// 3. query latency at N, exactness and brute-force cost on a sample
const qids = queries.map((q) => index.tokenIds(q));
const before = { ...index.stats };
t0 = performance.now();
const decisions = qids.map((ids) => index.findSimilar(ids) !== undefined);
const qMs = performance.now() - t0;
const nq = index.stats.queries - before.queries;
console.log(
  `query against ${N}: ${((qMs * 1000) / QUERIES).toFixed(0)} µs/query (${QUERIES} queries, ${decisions.filter(Boolean).length} above 0.7); ` +
    `per query ${((index.stats.postingsScanned - before.postingsScanned) / nq).toFixed(0)} postings, ${((index.stats.candidatesChecked - before.candidatesChecked) / nq).toFixed(0)} LCS`,
);
t0 = performance.now();
for (let q = 0; q < BRUTE; q++) {
  let hit = false;
  for (let j = 0; j < index.size && !hit; j++) {
    const n = index.itemTokens(j).length;
    if ((2 * index.lcsWith(qids[q], j)) / (qids[q].length + n) > 0.7) hit = true;
  }
  if (hit !== decisions[q]) throw new Error(`query ${q}: index says ${decisions[q]}, brute force says ${hit}`);
}
const bMs = performance.now() - t0;
console.log(`brute force (bit-parallel LCS with every kept item): ${(bMs / BRUTE / 1000).toFixed(2)} s/query on ${BRUTE} queries, same decisions`);
