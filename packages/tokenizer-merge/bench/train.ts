/**
 * Vocabulary-training benchmark: our `cllama-tokenizer train` side by side with spm_train
 * (Debian's sentencepiece, --num_threads=2) on ../shared/data/zh_corpus.txt, lines 1–74,700 for
 * training and 74,701–83,029 held out. Run by hand, after `npx nx run-many -t build`:
 *
 *   npx tsx packages/tokenizer-merge/bench/train.ts [--vocab 8000] [--types bpe,unigram] [--threads 2] [--skip-20k]
 *
 * Per type, the two trainers run back to back (the machine is shared, so only same-run ratios mean
 * anything), each as its own process under /usr/bin/time -v for wall time and peak RSS. Held-out
 * tokens/char of both models is measured with real SentencePiece (sentencepiece-js). Then a 20,000
 * piece unigram model is trained and merged into LLaMA's vocabulary (expected size, no duplicates,
 * sequence-length reduction).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareModels } from '../src/cli/compare.js';
import { mergeVocab } from '../src/merge.js';
import { readModelProto, serializeModelProto } from '../src/proto.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const shared = path.resolve(repoRoot, '../shared');
const cli = path.join(repoRoot, 'packages/tokenizer-merge/dist/cli.js');
const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : dflt;
};
const vocab = Number(arg('--vocab', '8000'));
const types = arg('--types', 'bpe,unigram')
  .split(',')
  .filter((t) => t === 'bpe' || t === 'unigram');
const threads = arg('--threads', '2');
const skip20k = args.includes('--skip-20k');

let corpus = path.join(shared, 'data/zh_corpus.txt');
if (!existsSync(corpus)) corpus = '/work/shared/data/zh_corpus.txt';
if (!existsSync(cli)) throw new Error(`build first: ${cli} is missing (npx nx run-many -t build)`);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'train-bench-'));
const lines = readFileSync(corpus, 'utf8').split('\n');
if (lines[lines.length - 1] === '') lines.pop();
const trainFile = path.join(tmp, 'train.txt');
const heldFile = path.join(tmp, 'held.txt');
writeFileSync(trainFile, lines.slice(0, 74_700).join('\n') + '\n');
writeFileSync(heldFile, lines.slice(74_700).join('\n') + '\n');
console.log(`corpus ${corpus}: ${lines.length} lines → train 74,700 / held out ${lines.length - 74_700}; work dir ${tmp}`);
console.log(
  `machine: ${os.cpus().length} cores, load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);

interface Run {
  wallS: number;
  peakMB: number;
  /** user + system CPU seconds: the load-independent cost (the machine may be shared). */
  cpuS: number;
}

function timed(cmd: string, cmdArgs: string[], log: string): Run {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...cmdArgs], { encoding: 'utf8', maxBuffer: 1 << 28 });
  writeFileSync(log, `${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) throw new Error(`${cmd} failed (see ${log}): ${r.stderr.slice(-500)}`);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr)!;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)!;
  const user = Number(/User time \(seconds\): ([\d.]+)/.exec(r.stderr)![1]);
  const sys = Number(/System time \(seconds\): ([\d.]+)/.exec(r.stderr)![1]);
  return {
    cpuS: user + sys,
    wallS: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]),
    peakMB: Number(rss[1]) / 1024,
  };
}

function trainSpm(type: string, size: number): Run & { model: string } {
  const prefix = path.join(tmp, `spm_${type}_${size}`);
  const run = timed(
    '/usr/bin/spm_train',
    [`--input=${trainFile}`, `--model_prefix=${prefix}`, `--vocab_size=${size}`, '--character_coverage=0.9995', `--model_type=${type}`, '--num_threads=2'],
    `${prefix}.log`,
  );
  return { ...run, model: `${prefix}.model` };
}

function trainOurs(type: string, size: number): Run & { model: string } {
  const prefix = path.join(tmp, `ours_${type}_${size}`);
  const run = timed(
    process.execPath,
    [
      cli,
      'train',
      '--input',
      trainFile,
      '--vocab-size',
      String(size),
      '--model-type',
      type,
      '--character-coverage',
      '0.9995',
      '--threads',
      threads,
      '--out',
      prefix,
      '--no-progress',
    ],
    `${prefix}.log`,
  );
  return { ...run, model: `${prefix}.model` };
}

async function tokensPerChar(model: string): Promise<number> {
  return (await compareModels([model], heldFile)).models[0]!.tokensPerChar;
}

const rows: string[] = [];
const header = '| type | vocab | trainer | wall s | CPU s | peak MB | held-out tokens/char |';
rows.push(header, '|---|---|---|---|---|---|---|');
const row = (type: string, size: number, who: string, r: Run, tpc: number): string =>
  `| ${type} | ${size} | ${who} | ${r.wallS.toFixed(1)} | ${r.cpuS.toFixed(1)} | ${r.peakMB.toFixed(0)} | ${tpc.toFixed(4)} |`;
const verdicts: string[] = [];
for (const type of types) {
  const spm = trainSpm(type, vocab);
  const ours = trainOurs(type, vocab);
  const tpcSpm = await tokensPerChar(spm.model);
  const tpcOurs = await tokensPerChar(ours.model);
  rows.push(row(type, vocab, 'spm_train 0.1.97 (2 threads)', spm, tpcSpm));
  rows.push(row(type, vocab, `cllama-tokenizer train (--threads ${threads})`, ours, tpcOurs));
  const tpcDiff = (tpcOurs / tpcSpm - 1) * 100;
  const timeRatio = ours.wallS / spm.wallS;
  const memRatio = ours.peakMB / spm.peakMB;
  verdicts.push(
    `${type}: tokens/char ${tpcDiff >= 0 ? '+' : ''}${tpcDiff.toFixed(2)}% vs spm_train (${Math.abs(tpcDiff) <= 1 ? 'within' : 'OUTSIDE'} 1%), ` +
      `wall time ratio ${timeRatio.toFixed(2)} (${timeRatio <= 1 ? 'ok' : 'OVER'} ≤ 1.0), CPU time ratio ${(ours.cpuS / spm.cpuS).toFixed(2)}, peak memory ratio ${memRatio.toFixed(2)} (${memRatio <= 1.5 ? 'ok' : 'OVER'} ≤ 1.5)`,
  );
  console.log(rows.slice(-2).join('\n'));
}

if (!skip20k) {
  const spm20 = trainSpm('unigram', 20_000);
  const ours20 = trainOurs('unigram', 20_000);
  const t1 = await tokensPerChar(spm20.model);
  const t2 = await tokensPerChar(ours20.model);
  rows.push(row('unigram', 20_000, 'spm_train 0.1.97 (2 threads)', spm20, t1));
  rows.push(row('unigram', 20_000, `cllama-tokenizer train (--threads ${threads})`, ours20, t2));
  verdicts.push(
    `unigram 20000: tokens/char ${((t2 / t1 - 1) * 100).toFixed(2)}% vs spm_train, wall ratio ${(ours20.wallS / spm20.wallS).toFixed(2)}, memory ratio ${(ours20.peakMB / spm20.peakMB).toFixed(2)}`,
  );

  // Merge into LLaMA: expected size = 32,000 + pieces LLaMA lacks; no duplicate pieces.
  let llamaPath = path.join(shared, 'fixtures/tokenizers/llama_tokenizer.model');
  if (!existsSync(llamaPath)) llamaPath = path.join(repoRoot, 'test-fixtures/tokenizers/llama_tokenizer.model');
  const llama = await readModelProto(llamaPath);
  const ours = await readModelProto(ours20.model);
  const llamaSet = new Set(llama.pieces.map((p) => p.piece));
  const fresh = ours.pieces.filter((p) => !llamaSet.has(p.piece)).length;
  const merged = mergeVocab(llama, ours);
  const distinct = new Set(merged.pieces.map((p) => p.piece)).size;
  const mergedPath = path.join(tmp, 'merged.model');
  writeFileSync(mergedPath, serializeModelProto(merged));
  const cmp = await compareModels([llamaPath, mergedPath], heldFile);
  verdicts.push(
    `merge: LLaMA ${llama.pieces.length} + ${fresh} new of our 20K = ${merged.pieces.length} pieces (expected ${llama.pieces.length + fresh}, ` +
      `${distinct === merged.pieces.length ? 'no duplicates' : `${merged.pieces.length - distinct} DUPLICATES`}); ` +
      `held-out tokens/char LLaMA ${cmp.models[0]!.tokensPerChar.toFixed(4)} → merged ${cmp.models[1]!.tokensPerChar.toFixed(4)} ` +
      `(${cmp.ratioToFirst[1]!.toFixed(2)}× shorter sequences)`,
  );
  console.log(execFileSync(process.execPath, [cli, 'compare', '--model', llamaPath, '--model', mergedPath, '--file', heldFile], { encoding: 'utf8' }));
}

console.log(`\n${rows.join('\n')}\n`);
for (const v of verdicts) console.log(v);
