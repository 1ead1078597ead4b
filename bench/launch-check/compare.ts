/**
 * Back on the CPU machine, after run.sh: scores the adapters the GPU run wrote with `cllama-train score`
 * (wasm) on the ids PyTorch scored (upload/score_ids.json) and compares with PyTorch's losses
 * (results.json "score"): relative error must be ≤ 1e-4.
 *
 *   npx tsx bench/launch-check/compare.ts <the run's $OUT folder, as fetched>
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../packages/trainer/dist/cli.js');
const out = process.argv[2];
if (!out) {
  console.error('compare: give the folder run.sh wrote ($OUT, as fetched)');
  process.exit(2);
}
const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as { score: Record<string, { pytorch_loss: number }>; failed: string[] };
const upload = path.join(HERE, 'upload');
let failed = 0;
for (const [run, { pytorch_loss: torchLoss }] of Object.entries(results.score)) {
  const stdout = execFileSync(
    'node',
    [
      CLI,
      'score',
      '--model',
      path.join(upload, 'stage1'),
      '--lora',
      path.join(out, run),
      '--input-ids',
      path.join(upload, 'score_ids.json'),
      '--backend',
      'wasm',
      '--json',
    ],
    { encoding: 'utf8' },
  );
  const ours = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { loss: number };
  const rel = Math.abs(ours.loss - torchLoss) / Math.abs(torchLoss);
  const ok = rel <= 1e-4;
  if (!ok) failed += 1;
  console.log(
    `${ok ? 'PASS' : 'FAIL'}  ${run}: cllama-train score (wasm) ${ours.loss.toFixed(6)} vs PyTorch ${torchLoss.toFixed(6)}, relative error ${rel.toExponential(2)}`,
  );
}
console.log(`GPU-side checks failed: ${results.failed.length === 0 ? 'none' : results.failed.join(', ')}`);
console.log(`${Object.keys(results.score).length - failed} passed, ${failed} failed`);
process.exit(failed > 0 || results.failed.length > 0 ? 1 : 0);
