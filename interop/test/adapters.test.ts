/**
 * LoRA adapters, both ways, against real PEFT 0.21 (fp32, eager attention):
 *
 *   real PEFT → ours: adapters saved by PEFT's own save_pretrained (get_peft_model on each target set,
 *     modules_to_save embed_tokens / lm_head / both / none, tied and untied bases, rsLoRA, a regex
 *     target_modules, the recipe's 49,953-row vocabulary) applied unmerged by ours (what
 *     `cllama-train score|generate --lora` do) = PeftModel.from_pretrained; `cllama-lora merge` =
 *     merge_and_unload(), read back by ours and by transformers; `cllama-lora info --base` counts what
 *     PEFT trains; continued with `cllama-train pretrain --stage 2 --peft-path`: our first-step loss =
 *     PEFT's loss on the same batch, and the continued adapter loads back into PEFT.
 *   ours → real PEFT: cllama-train's stage-2 adapter (tied base, resized vocabulary) and SFT adapters
 *     (continuing that one with --peft-path; fresh on a GQA base) through PeftModel.from_pretrained,
 *     unmerged and merged.
 *   per-module ranks/alphas (rank_pattern, alpha_pattern): not read — refused in one line.
 * Every comparison: logits and loss within 1e-4 relative.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../packages/trainer/src/backend.js';
import { attachLoraFromDir } from '../../packages/trainer/src/model/adapter.js';
import { loadLlama } from '../../packages/trainer/src/model/io.js';
import { FIXTURES, assertReady, cli, cliOk, labelsFor, maxRelativeError, oracle, readFloat32, relativeError, report, seededIds } from './helpers.js';

const TOL = 1e-4;
const ZH_TOKENIZER = path.join(FIXTURES, 'tokenizers/chinese_sp.model'); // 20,000 pieces
const ZH_VOCAB = 20000;
const ALL7 = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
let root: string;
const p = (...parts: string[]) => path.join(root, ...parts);

interface AdapterCase {
  name: string;
  base: () => string;
  adapter: () => string;
  /** rows the base is resized to before the adapter is applied (ours trained on a larger tokenizer) */
  resize?: number;
  /** expected untied after applying (tied base + saved embeddings) */
  untied?: boolean;
}

/** Real-PEFT adapters made by oracle.py (make_adapter). */
const PEFT_MADE: Array<{ name: string; base: string; targets: string[] | string; modules_to_save?: string[]; r?: number; alpha?: number; rslora?: boolean }> = [
  { name: 'gqa-all7-embed-head', base: 'tiny-llama-gqa', targets: ALL7, modules_to_save: ['embed_tokens', 'lm_head'] },
  { name: 'tied-all7-embed-head', base: 'tiny-llama-tied', targets: ALL7, modules_to_save: ['embed_tokens', 'lm_head'] },
  { name: 'tied-qv-embed', base: 'tiny-llama-tied', targets: ['q_proj', 'v_proj'], modules_to_save: ['embed_tokens'] },
  { name: 'tied-ko-head', base: 'tiny-llama-tied', targets: ['k_proj', 'o_proj'], modules_to_save: ['lm_head'] },
  { name: 'tied-qv-none', base: 'tiny-llama-tied', targets: ['q_proj', 'v_proj'] },
  { name: 'mha-mlp-rslora', base: 'tiny-llama', targets: ['gate_proj', 'up_proj', 'down_proj'], r: 8, alpha: 16, rslora: true },
  { name: 'mha-regex-qv', base: 'tiny-llama', targets: '.*\\.(q|v)_proj', r: 2, alpha: 4 },
  { name: 'v49953-qv-embed-head', base: 'hf-v49953', targets: ['q_proj', 'v_proj'], modules_to_save: ['embed_tokens', 'lm_head'] },
  { name: 'tied20k-all7-embed-head', base: 'hf-tied20k', targets: ALL7, modules_to_save: ['embed_tokens', 'lm_head'] },
];
const baseDir = (b: string) => (b.startsWith('hf-') ? p(b) : path.join(FIXTURES, b));
const trainable = new Map<string, number>();

const REAL: AdapterCase[] = PEFT_MADE.map((m) => ({
  name: `real PEFT ${m.name}`,
  base: () => baseDir(m.base),
  adapter: () => p('peft', m.name),
  untied: m.base.includes('tied') && (m.modules_to_save ?? []).length > 0,
}));
const OURS: AdapterCase[] = [
  {
    name: 'ours stage 2 (tied base, 280 → 20,000 rows)',
    base: () => path.join(FIXTURES, 'tiny-llama-tied'),
    adapter: () => p('ours-stage2'),
    resize: ZH_VOCAB,
    untied: true,
  },
  {
    name: 'ours SFT --peft-path stage 2 (tied base)',
    base: () => path.join(FIXTURES, 'tiny-llama-tied'),
    adapter: () => p('ours-sft-tied'),
    resize: ZH_VOCAB,
    untied: true,
  },
  {
    name: 'ours SFT fresh (GQA base, 300 → 20,000 rows)',
    base: () => path.join(FIXTURES, 'tiny-llama-gqa'),
    adapter: () => p('ours-sft-gqa'),
    resize: ZH_VOCAB,
  },
];

/** PEFT's logits/loss per case: [unmerged, merged] */
const peft = new Map<string, Array<{ loss: number; logits: Float32Array }>>();
const hfOfOurMerge = new Map<string, { loss: number; logits: Float32Array }>();
const inputs = new Map<string, { ids: number[][]; labels: number[][] }>();

async function vocabOf(c: AdapterCase): Promise<number> {
  return c.resize ?? JSON.parse(await fs.readFile(path.join(c.base(), 'config.json'), 'utf8')).vocab_size;
}

const trainCommon = ['--backend', 'wasm', '--threads', '1', '--seed', '3', '--logging-steps', '1', '--save-steps', '100', '--lora-dropout', '0'];
/** the two short SFT runs of ours */
const sftShort = [
  '--max-seq-length',
  '96',
  '--validation-split-percentage',
  '0',
  '--per-device-train-batch-size',
  '4',
  '--max-steps',
  '2',
  '--learning-rate',
  '5e-3',
  ...trainCommon,
];

// Long (~140 lines) on purpose: the suite's one set-up, every adapter the tests below compare (ours trained
// through the CLI, real PEFT's, the merged models) made in order from the same data and base models.
beforeAll(async () => {
  assertReady();
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-interop-adapters-'));
  // data: a few zh documents (pre-training blocks) and Alpaca records (SFT)
  await fs.mkdir(p('zh'));
  const zh = (await fs.readFile(path.join(FIXTURES, 'train/zh_text.txt'), 'utf8')).split('\n').slice(0, 14).join('\n');
  await fs.writeFile(p('zh', 'zh.txt'), `${zh}\n`);
  await fs.mkdir(p('sft'));
  const alpaca = JSON.parse(await fs.readFile(path.join(FIXTURES, 'data/alpaca_zh_demo.json'), 'utf8')).slice(0, 16);
  await fs.writeFile(p('sft', 'train.json'), JSON.stringify(alpaca));

  // bases transformers writes, then real-PEFT adapters on every base
  const made = await oracle<{ trainable: number }>(root, [
    { op: 'make_model', out: p('hf-v49953'), vocab: 49953, hidden: 16, intermediate: 40, layers: 2, heads: 4, kv_heads: 2, seed: 11 },
    { op: 'make_model', out: p('hf-tied20k'), vocab: ZH_VOCAB, hidden: 32, intermediate: 64, layers: 2, heads: 4, kv_heads: 2, tie: true, seed: 12 },
    ...PEFT_MADE.map((m, i) => ({
      op: 'make_adapter',
      name: m.name,
      model: baseDir(m.base),
      out: p('peft', m.name),
      targets: m.targets,
      modules_to_save: m.modules_to_save ?? null,
      r: m.r ?? 4,
      alpha: m.alpha ?? 8,
      rslora: m.rslora ?? false,
      seed: 100 + i,
    })),
    {
      op: 'make_adapter',
      name: 'rank-pattern',
      model: path.join(FIXTURES, 'tiny-llama'),
      out: p('peft-rank-pattern'),
      targets: ['q_proj', 'v_proj'],
      rank_pattern: { q_proj: 8 },
    },
    {
      op: 'make_adapter',
      name: 'alpha-pattern',
      model: path.join(FIXTURES, 'tiny-llama'),
      out: p('peft-alpha-pattern'),
      targets: ['q_proj', 'v_proj'],
      alpha_pattern: { v_proj: 32 },
    },
  ]);
  for (const [i, m] of PEFT_MADE.entries()) trainable.set(m.name, made.results[2 + i]!.trainable);

  // ours: stage 2 on the tied fixture (resized to the zh tokenizer), SFT continuing it, SFT fresh on GQA
  const tied = path.join(FIXTURES, 'tiny-llama-tied');
  await cliOk('train', [
    'pretrain',
    '--stage',
    '2',
    '--model-name-or-path',
    tied,
    '--tokenizer-name-or-path',
    ZH_TOKENIZER,
    '--dataset-dir',
    p('zh'),
    '--output-dir',
    p('ours-stage2'),
    '--block-size',
    '32',
    '--validation-split-percentage',
    '0',
    '--per-device-train-batch-size',
    '4',
    '--max-steps',
    '3',
    '--learning-rate',
    '5e-3',
    '--lora-rank',
    '4',
    '--lora-alpha',
    '8',
    '--trainable',
    'q_proj,k_proj,v_proj,o_proj',
    '--modules-to-save',
    'embed_tokens,lm_head',
    ...trainCommon,
  ]);
  await cliOk('train', [
    'sft',
    '--model-name-or-path',
    tied,
    '--tokenizer-name-or-path',
    ZH_TOKENIZER,
    '--dataset-dir',
    p('sft'),
    '--output-dir',
    p('ours-sft-tied'),
    '--peft-path',
    p('ours-stage2'),
    ...sftShort,
  ]);
  await cliOk('train', [
    'sft',
    '--model-name-or-path',
    path.join(FIXTURES, 'tiny-llama-gqa'),
    '--tokenizer-name-or-path',
    ZH_TOKENIZER,
    '--dataset-dir',
    p('sft'),
    '--output-dir',
    p('ours-sft-gqa'),
    ...sftShort,
  ]);

  // our merges of every adapter (the CLI a user runs)
  for (const c of [...REAL, ...OURS]) {
    await cliOk('lora', ['merge', '--base', c.base(), '--lora', c.adapter(), '--out', p('merged', c.name.replace(/\W+/g, '-'))]);
  }

  // PEFT: unmerged and merged logits of every case; transformers on our merged folders
  const jobs: Array<Record<string, unknown>> = [];
  for (const c of [...REAL, ...OURS]) {
    const vocab = await vocabOf(c);
    const ids = seededIds(2, 20, vocab, c.name.length * 104729 + 7);
    const labels = labelsFor(ids);
    inputs.set(c.name, { ids, labels });
    const common = { model: c.base(), adapter: c.adapter(), ids, labels, resize: c.resize ?? null };
    jobs.push({ op: 'forward', name: `${c.name} unmerged`, ...common, logits_out: p(`${jobs.length}.bin`) });
    jobs.push({ op: 'forward', name: `${c.name} merged`, ...common, merge: true, logits_out: p(`${jobs.length}.bin`) });
    jobs.push({
      op: 'forward',
      name: `${c.name} our merge`,
      model: p('merged', c.name.replace(/\W+/g, '-')),
      ids,
      labels,
      logits_out: p(`${jobs.length}.bin`),
    });
  }
  const run = await oracle<{ loss: number }>(root, jobs);
  for (const [i, c] of [...REAL, ...OURS].entries()) {
    const get = async (k: number) => ({ loss: run.results[3 * i + k]!.loss, logits: await readFloat32(p(`${3 * i + k}.bin`)) });
    peft.set(c.name, [await get(0), await get(1)]);
    hfOfOurMerge.set(c.name, await get(2));
  }
  report('python', run.versions);
  await initBackend('wasm');
});

afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function ourLogits(modelDir: string, c: AdapterCase, adapter?: string): Promise<{ logits: Float32Array; loss: number; tied: boolean }> {
  const { ids, labels } = inputs.get(c.name)!;
  const model = await loadLlama(modelDir);
  try {
    if (adapter) await attachLoraFromDir(model, adapter);
    model.eval();
    const idT = tf.tensor2d(ids, undefined, 'int32');
    const labT = tf.tensor2d(labels, undefined, 'int32');
    const lt = model.logits(idT);
    const ls = model.loss(idT, labT);
    const out = { logits: Float32Array.from((await lt.data()) as Float32Array), loss: (await ls.data())[0]!, tied: model.config.tieWordEmbeddings };
    tf.dispose([idT, labT, lt, ls]);
    return out;
  } finally {
    model.dispose();
  }
}

function check(what: string, ours: { logits: Float32Array; loss: number }, theirs: { logits: Float32Array; loss: number }): void {
  const logitsRel = maxRelativeError(ours.logits, theirs.logits);
  const lossRel = relativeError(ours.loss, theirs.loss);
  report(what, { logits_rel: logitsRel, loss_rel: lossRel, loss: theirs.loss });
  expect(logitsRel, `${what}: logits`).toBeLessThan(TOL);
  expect(lossRel, `${what}: loss`).toBeLessThan(TOL);
}

describe('adapters: ours = PeftModel.from_pretrained (unmerged) and merge_and_unload (merged)', () => {
  for (const c of [...REAL, ...OURS]) {
    it(c.name, async () => {
      const [unmerged, merged] = peft.get(c.name)!;
      const applied = await ourLogits(c.base(), c, c.adapter());
      expect(applied.tied).toBe(!c.untied && JSON.parse(await fs.readFile(path.join(c.base(), 'config.json'), 'utf8')).tie_word_embeddings === true);
      check(`${c.name}: ours unmerged vs PEFT unmerged`, applied, unmerged!);
      const ourMerge = p('merged', c.name.replace(/\W+/g, '-'));
      check(`${c.name}: cllama-lora merge (ours) vs merge_and_unload`, await ourLogits(ourMerge, c), merged!);
      check(`${c.name}: cllama-lora merge (transformers) vs merge_and_unload`, hfOfOurMerge.get(c.name)!, merged!);
      const config = JSON.parse(await fs.readFile(path.join(ourMerge, 'config.json'), 'utf8'));
      if (c.untied) expect(config.tie_word_embeddings).toBe(false);
    });
  }
});

describe('cllama-lora info on real-PEFT adapters', () => {
  for (const m of PEFT_MADE) {
    it(`${m.name}: the trainable count is what PEFT trains`, async () => {
      const info = JSON.parse(await cliOk('lora', ['info', p('peft', m.name), '--base', baseDir(m.base), '--json']));
      expect(info.r).toBe(m.r ?? 4);
      expect(info.trainable.trainable).toBe(trainable.get(m.name));
      expect(info.modulesToSave).toEqual(m.modules_to_save ?? []);
    });
  }

  for (const [name, dir, pattern] of [
    ['rank_pattern', 'peft-rank-pattern', /rank_pattern is set; per-module ranks\/alphas are not supported/],
    ['alpha_pattern', 'peft-alpha-pattern', /alpha_pattern is set; per-module ranks\/alphas are not supported/],
  ] as const) {
    it(`an adapter with ${name} is refused in one line by info, merge and score (not read)`, async () => {
      for (const args of [
        ['lora', 'info', p(dir)],
        ['lora', 'merge', '--base', path.join(FIXTURES, 'tiny-llama'), '--lora', p(dir), '--out', p(`refused-${name}`)],
      ] as const) {
        const r = await cli(args[0], args.slice(1) as string[]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(pattern);
      }
      const ids = p(`ids-${name}.json`);
      await fs.writeFile(ids, JSON.stringify([[1, 2, 3, 4]]));
      const r = await cli('train', ['score', '--model', path.join(FIXTURES, 'tiny-llama'), '--lora', p(dir), '--input-ids', ids, '--backend', 'wasm']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(pattern);
    });
  }
});

describe('real-PEFT adapters continued with cllama-train --peft-path', () => {
  for (const [name, base] of [
    ['tied20k-all7-embed-head', 'hf-tied20k'],
    ['v49953-qv-embed-head', 'hf-v49953'],
  ] as const) {
    it(`${name}: our first-step loss = PEFT's on the same batch; the continued adapter loads back into PEFT`, async () => {
      const out = p(`continued-${name}`);
      // a tokenizer of the base's size: the zh model (20,000) for tied20k; for the 49,953-row base, our merge of LLaMA + zh
      const tokenizer = base === 'hf-tied20k' ? ZH_TOKENIZER : await mergedTokenizer();
      const flags = [
        'pretrain',
        '--stage',
        '2',
        '--model-name-or-path',
        baseDir(base),
        '--tokenizer-name-or-path',
        tokenizer,
        '--dataset-dir',
        p('zh'),
        '--block-size',
        '32',
        '--validation-split-percentage',
        '0',
        '--per-device-train-batch-size',
        '64',
        '--max-steps',
        '2',
        '--learning-rate',
        '1e-3',
        '--peft-path',
        p('peft', name),
        ...trainCommon,
      ];
      // the batch: every block (the batch size exceeds the block count), read from --emit-launch's export of the same data
      await cliOk('train', [...flags, '--output-dir', p(`never-${name}`), '--emit-launch', p(`launch-${name}`)]);
      const meta = JSON.parse(await fs.readFile(p(`launch-${name}`, 'data/meta.json'), 'utf8'));
      const flat = new Int32Array((await fs.readFile(p(`launch-${name}`, 'data/train_input_ids.bin'))).buffer.slice(0));
      const blocks = Array.from({ length: meta.splits.train.count }, (_, i) => Array.from(flat.subarray(i * 32, (i + 1) * 32)));
      expect(blocks.length).toBeGreaterThan(3);
      expect(blocks.length).toBeLessThan(64);
      await cliOk('train', [...flags, '--output-dir', out]);
      const metrics = (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const first = metrics.find((m) => m.step === 1 && m.loss !== undefined);
      const run = await oracle<{ loss: number }>(root, [
        { op: 'forward', model: baseDir(base), adapter: p('peft', name), ids: blocks, labels: blocks },
        { op: 'forward', model: baseDir(base), adapter: out, ids: blocks.slice(0, 2), labels: blocks.slice(0, 2), logits_out: p(`cont-${name}.bin`) },
      ]);
      const lossRel = relativeError(first.loss, run.results[0]!.loss);
      report(`${name} continued: first-step loss`, { ours: first.loss, peft: run.results[0]!.loss, rel: lossRel, blocks: blocks.length });
      expect(lossRel).toBeLessThan(TOL * 2); // ours is rounded to 6 decimals in metrics.jsonl
      expect(metrics.find((m) => m.step === 2).loss).toBeLessThan(first.loss);
      // the continued adapter (PEFT layout, written by us) through PEFT = ours
      const c: AdapterCase = { name: `continued ${name}`, base: () => baseDir(base), adapter: () => out, untied: base === 'hf-tied20k' };
      inputs.set(c.name, { ids: blocks.slice(0, 2), labels: blocks.slice(0, 2) });
      const ours = await ourLogits(c.base(), c, out);
      check(`${name} continued: ours vs PEFT`, ours, { loss: run.results[1]!.loss, logits: await readFloat32(p(`cont-${name}.bin`)) });
      const keys = Object.keys(
        JSON.parse(
          (await fs.readFile(path.join(out, 'adapter_model.safetensors')))
            .subarray(8, 8 + 65536)
            .toString('utf8')
            .split('}}')[0] + '}}',
        ),
      );
      expect(keys).toContain('base_model.model.lm_head.weight');
    });
  }
});

let merged49953: string | undefined;
/** LLaMA's tokenizer + the zh model merged, no pad: 49,953 pieces (the recipe's first vocabulary). */
async function mergedTokenizer(): Promise<string> {
  if (merged49953) return merged49953;
  const out = p('merged-tokenizer');
  await cliOk('tokenizer', [
    'merge',
    '--base',
    path.join(FIXTURES, 'tokenizers/llama_tokenizer.model'),
    '--add',
    ZH_TOKENIZER,
    '--out',
    out,
    '--no-pad',
    '--no-check',
  ]);
  merged49953 = out;
  return out;
}
