/**
 * Tokenizing throughput of @cllama/alpaca-data next to Python sentencepiece, on the same text and the
 * same merged tokenizer. Run by hand (not part of `npm test`):
 *
 *   npx tsx packages/alpaca-data/bench/tokenize.ts [--lines N] [--model path]
 *
 * Reads ../shared/data (beside the repository root). Prints characters per second (UTF-16 code
 * units, which equal code points for this Chinese text) for:
 *   - Python sentencepiece (/usr/bin/python3, sp.encode line by line; the best of 3 runs),
 *   - our tokenizer's encode() line by line (loadTokenizer: the TypeScript encoder) — best of 3,
 *   - `tokenize --kind pt` end to end (read file, encode, block, write the dataset folder): the first
 *     run in the process (the encoder's memo cold) and, after the encode runs, the best of 3,
 *   - `tokenize --kind sft` end to end on the Alpaca demo files (template, masking, write); its chars
 *     count instruction + input + output only, not the ~110-character template encoded with each.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { tokenizeFiles } from '../src/tokenize-files.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const shared = path.resolve(repoRoot, '../shared');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const model = arg('--model', path.join(repoRoot, 'test-fixtures/tokenizers/merged_reference.model'));
const corpus = path.join(shared, 'data/zh_corpus.txt');
if (!existsSync(corpus)) {
  console.error(`bench: ${corpus} not found (the benchmark reads ../shared/data beside the repository)`);
  process.exit(1);
}
const maxLines = Number(arg('--lines', '83029'));
const lines = readFileSync(corpus, 'utf8').split('\n').slice(0, maxLines);
const chars = lines.reduce((a, l) => a + l.length, 0);
const tmp = mkdtempSync(path.join(tmpdir(), 'cllama-bench-'));
const text = path.join(tmp, 'corpus.txt');
writeFileSync(text, lines.join('\n') + '\n');
console.log(`text: ${lines.length} lines, ${(chars / 1e6).toFixed(2)} M chars of ${path.relative(repoRoot, corpus)}; model ${path.relative(repoRoot, model)}`);

function python(): number | undefined {
  if (!existsSync('/usr/bin/python3')) return undefined;
  const script = [
    'import sys, time, sentencepiece as spm',
    'sp = spm.SentencePieceProcessor(model_file=sys.argv[1])',
    "lines = open(sys.argv[2], encoding='utf-8').read().split('\\n')",
    'n = sum(len(l) for l in lines); best = 1e9',
    'for _ in range(3):',
    '    t = time.perf_counter()',
    '    for l in lines: sp.encode(l)',
    '    best = min(best, time.perf_counter() - t)',
    'print(n / best)',
  ].join('\n');
  try {
    return Number(execFileSync('/usr/bin/python3', ['-c', script, model, text], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}

const rows: [string, number | undefined][] = [];
rows.push(['Python sentencepiece 0.1.97, sp.encode per line', python()]);

const tok = await loadTokenizer(model);
const e2e = async (kind: 'pt' | 'sft', inputs: string[], runs: number) => {
  const times: number[] = [];
  let summary: Awaited<ReturnType<typeof tokenizeFiles>> | undefined;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    summary = await tokenizeFiles({ kind, inputs, out: path.join(tmp, kind), tokenizer: tok, blockSize: 512, maxSeqLength: 512 });
    times.push((performance.now() - t) / 1000);
  }
  return { best: summary!.chars / Math.min(...times), count: summary!.meta.count };
};

// First, before anything else has encoded text in this process: the encoder's memo is empty, as
// at the start of a real job.
const cold = await e2e('pt', [text], 1);
rows.push([`ours: tokenize --kind pt end to end, first run (cold encoder)`, cold.best]);

let best = Infinity;
for (let r = 0; r < 3; r++) {
  const t = performance.now();
  for (const l of lines) tok.encode(l);
  best = Math.min(best, (performance.now() - t) / 1000);
}
rows.push(['ours: tokenizer.encode per line (best of 3)', chars / best]);

const pt = await e2e('pt', [text], 3);
rows.push([`ours: tokenize --kind pt end to end, best of 3 (${pt.count} blocks)`, pt.best]);
const sftInputs = ['alpaca_zh_demo.json', 'alpaca_en_demo.json'].map((f) => path.join(shared, 'data', f));
const sft = await e2e('sft', sftInputs, 3);
rows.push([`ours: tokenize --kind sft end to end, best of 3 (${sft.count} examples)`, sft.best]);

const py = rows[0][1];
for (const [name, v] of rows) {
  const ratio = v !== undefined && py !== undefined ? `  (${(v / py).toFixed(2)}× Python)` : '';
  console.log(`${name.padEnd(70)} ${v === undefined ? 'n/a' : `${(v / 1e6).toFixed(2)} M chars/s`}${ratio}`);
}
rmSync(tmp, { recursive: true, force: true });
