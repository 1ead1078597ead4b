/**
 * Builds bench/launch-check/upload/ on the CPU machine, for run.sh on a GPU machine (see README.md):
 *
 *   stage1/          the recipe's stage-1 model (02-stage1, written by cllama-train): MODEL_PATH of both runs
 *   stage2-launch/   `cllama-train pretrain --stage 2 … --emit-launch` with the fast preset's stage-2 flags
 *   sft-launch/      `cllama-train sft … --emit-launch` with the fast preset's SFT flags
 *   ts-sft/          the TypeScript-trained SFT adapter (04-sft) for the reverse check
 *   merged/          the recipe's merged model (05-merged, written by cllama-lora merge)
 *   tokenizer/       the merged tokenizer folder (01-vocab/merged)
 *   score_ids.json   4 held-out stage-2 blocks: PyTorch scores the GPU-trained adapters on them,
 *                    compare.ts scores the same adapters with cllama-train (wasm) back here
 *   expected.json    our token ids for held-out lines; our losses; the shapes of
 *   logits_peft.bin  float32 logits of stage1 + ts-sft (LoRA unmerged) on 2 held-out lines
 *   logits_merged.bin  float32 logits of merged/ on the same ids
 *
 *   npx tsx bench/launch-check/prepare.ts [--run runs/launch-check] [--force]
 * The run folder comes from `npm run recipe -- --preset fast --name launch-check --backend wasm`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { PRESETS, phaseTrainFlags } from '../../examples/src/presets.js';
import { attachLoraFromDir, initBackend, loadLlama } from '@cllama/trainer';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const CLI = path.join(ROOT, 'packages/trainer/dist/cli.js');
const MAX_UPLOAD_BYTES = 48 * 1024 * 1024; // the working tree (~15 MB) travels too; 64 MiB in all

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function copyDir(from: string, to: string, only?: (name: string) => boolean): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  for (const name of await fs.readdir(from)) {
    const st = await fs.stat(path.join(from, name));
    if (st.isFile() && (!only || only(name))) await fs.copyFile(path.join(from, name), path.join(to, name));
  }
}

async function duBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }))
    n += e.isDirectory() ? await duBytes(path.join(dir, e.name)) : (await fs.stat(path.join(dir, e.name))).size;
  return n;
}

// Long (~145 lines) on purpose: the kit's preparation as one script read top to bottom, each step (the
// recipe's folders, the emitted launch folders, the checks' inputs, the size budget) using the ones before.
async function main(): Promise<void> {
  const run = path.resolve(flag('--run') ?? path.join(ROOT, 'runs/launch-check'));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; build first (npx nx run-many -t build)`);
  const out = path.join(HERE, 'upload');
  const preset = PRESETS.fast;
  const state = JSON.parse(await fs.readFile(path.join(run, 'state.json'), 'utf8').catch(() => '{}'));
  for (const phase of ['stage1', 'stage2', 'sft', 'merge']) {
    if (!state.phases?.[phase])
      throw new Error(`${run} has not finished phase '${phase}'; run: npm run recipe -- --preset fast --name launch-check --backend wasm`);
  }
  if (state.preset !== 'fast') throw new Error(`${run} is a '${state.preset}' run; the check uses the fast preset`);
  if (existsSync(out)) {
    if (!process.argv.includes('--force')) throw new Error(`${out} exists; pass --force to rebuild it`);
    await fs.rm(out, { recursive: true });
  }
  await fs.mkdir(out);
  const r = (...p: string[]) => path.join(run, ...p);
  const tokenizerDir = r('01-vocab/merged');
  // models without their tokenizer copies (upload/tokenizer/ has it once): the upload has to stay small
  const isModel = (n: string) => n === 'config.json' || n === 'generation_config.json' || n.startsWith('model');
  await copyDir(r('02-stage1'), path.join(out, 'stage1'), isModel);
  await copyDir(r('04-sft'), path.join(out, 'ts-sft'), (n) => n.startsWith('adapter_'));
  await copyDir(r('05-merged'), path.join(out, 'merged'), isModel);
  await copyDir(tokenizerDir, path.join(out, 'tokenizer'));

  // the two emitted folders, with the recipe's own flags (the output dir is replaced by OUTPUT_DIR on the GPU side)
  const s2 = preset.stage2;
  execFileSync(
    'node',
    [
      CLI,
      'pretrain',
      '--stage',
      '2',
      '--model-name-or-path',
      r('02-stage1'),
      '--tokenizer-name-or-path',
      tokenizerDir,
      '--dataset-dir',
      r('data/zh'),
      '--output-dir',
      '/launch-check/out/stage2',
      '--block-size',
      String(preset.blockSize),
      '--validation-split-percentage',
      '5',
      '--lora-rank',
      String(s2.loraRank),
      '--lora-alpha',
      String(s2.loraAlpha),
      '--lora-dropout',
      String(s2.loraDropout),
      '--trainable',
      s2.targets.join(','),
      '--modules-to-save',
      'embed_tokens,lm_head',
      ...phaseTrainFlags(s2, preset.maxEvalSamples),
      '--emit-launch',
      path.join(out, 'stage2-launch'),
    ],
    { stdio: 'inherit' },
  );
  const sft = preset.sft;
  execFileSync(
    'node',
    [
      CLI,
      'sft',
      '--model-name-or-path',
      r('02-stage1'),
      '--tokenizer-name-or-path',
      tokenizerDir,
      '--peft-path',
      r('03-stage2'),
      '--dataset-dir',
      r('data/sft'),
      '--validation-file',
      r('data/sft_eval.json'),
      '--output-dir',
      '/launch-check/out/sft',
      '--max-seq-length',
      String(preset.maxSeqLength),
      '--lora-rank',
      String(sft.loraRank),
      '--lora-alpha',
      String(sft.loraAlpha),
      '--lora-dropout',
      String(sft.loraDropout),
      '--trainable',
      sft.targets.join(','),
      '--modules-to-save',
      'embed_tokens,lm_head',
      ...phaseTrainFlags(sft, preset.maxEvalSamples),
      '--emit-launch',
      path.join(out, 'sft-launch'),
    ],
    { stdio: 'inherit' },
  );

  // ids PyTorch and cllama-train score the GPU-trained adapters on: the first 4 held-out stage-2 blocks
  const evalIds = new Int32Array((await fs.readFile(path.join(out, 'stage2-launch/data/eval_input_ids.bin'))).buffer.slice(0));
  const block = preset.blockSize;
  const scoreIds = Array.from({ length: Math.min(4, evalIds.length / block) }, (_, i) => Array.from(evalIds.subarray(i * block, (i + 1) * block)));
  await fs.writeFile(path.join(out, 'score_ids.json'), JSON.stringify(scoreIds));

  // reverse check: our token ids and our logits
  await initBackend('wasm');
  const tok = await loadTokenizer(tokenizerDir);
  const heldout = (await fs.readFile(r('data/zh_heldout.txt'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, 40);
  const lines = [...heldout, 'Hello world, this is LLaMA.', '中文和English混合 123', '  leading spaces and\ttabs', '北京是中国的首都。'];
  const ids = lines.map((l) => tok.encode(l, { addBos: true }));
  const width = 12;
  const logitIds = ids
    .filter((x) => x.length >= width)
    .slice(0, 2)
    .map((x) => x.slice(0, width));
  const logitsOf = async (modelDir: string, lora: string | undefined, file: string) => {
    const model = await loadLlama(modelDir);
    if (lora) await attachLoraFromDir(model, lora);
    model.train(false);
    const idsT = tf.tensor2d(logitIds, undefined, 'int32');
    const logits = model.logits(idsT);
    const loss = model.loss(idsT, idsT);
    const data = logits.dataSync() as Float32Array;
    await fs.writeFile(path.join(out, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const result = { file, shape: logits.shape, loss: loss.dataSync()[0]!, logits_sum: data.reduce((a, b) => a + b, 0) };
    tf.dispose([idsT, logits, loss]);
    model.dispose();
    return result;
  };
  const expected = {
    lines,
    ids,
    logit_ids: logitIds,
    peft: { base: 'stage1', adapter: 'ts-sft', ...(await logitsOf(r('02-stage1'), r('04-sft'), 'logits_peft.bin')) },
    merged: { model: 'merged', ...(await logitsOf(r('05-merged'), undefined, 'logits_merged.bin')) },
    tolerance: { logits_abs: 1e-4, loss_rel: 1e-4 },
  };
  await fs.writeFile(path.join(out, 'expected.json'), `${JSON.stringify(expected)}\n`);
  const bytes = await duBytes(out);
  console.log(`upload: ${out}, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  if (bytes > MAX_UPLOAD_BYTES) throw new Error(`the upload is ${(bytes / 2 ** 20).toFixed(1)} MiB, over ${MAX_UPLOAD_BYTES / 2 ** 20} MiB`);
}

main().catch((err: Error) => {
  console.error(`prepare: ${err.message}`);
  process.exit(1);
});
