/**
 * `cllama-train pretrain|sft --emit-launch`: the built CLI writes a complete torchrun folder whose token
 * files, read back with numpy (and with train.py's own dataset + collator), equal what cllama-train's
 * data preparation yields; flags map to train.py / Trainer arguments; bad input writes nothing.
 * Needs python3 with numpy (Debian python3-numpy; .ci/run installs it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, promises as fs, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { collate } from '@cllama/alpaca-data';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preparePretrainData, prepareSftData, type PreparedData } from '../src/train/data.js';
import { FIXTURES, TINY_LLAMA } from './helpers.js';

const run = promisify(execFile);

/** A python3 that has numpy: $PYTHON, the one on PATH, or Debian's (where .ci/run installs python3-numpy). */
const PYTHON =
  [process.env.PYTHON, 'python3', '/usr/bin/python3'].find((py) => {
    if (!py) return false;
    try {
      execFileSync(py, ['-c', 'import numpy'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }) ?? 'python3';
const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
const ZH_TOKENIZER = path.join(FIXTURES, 'tokenizers/chinese_sp.model');

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run('node', [CLI, ...args], { maxBuffer: 1 << 26 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/** Python: every record of data/ via raw np.memmap and via train.py's TokenDataset (must agree), plus pad_batch of the first `padN`. */
function readWithNumpy(
  launchDir: string,
  padN = 0,
): {
  train: { ids: number[][]; labels: number[][] | null };
  eval: { ids: number[][]; labels: number[][] | null } | null;
  padded: Record<string, number[][]> | null;
} {
  const script = `
import json, os, sys
import numpy as np
d = sys.argv[1]; pad_n = int(sys.argv[2])
meta = json.load(open(os.path.join(d, 'data', 'meta.json')))
sys.path.insert(0, d)
import train
out = {}
for split in ('train', 'eval'):
    info = meta['splits'].get(split)
    if info is None:
        out[split] = None; continue
    f = info['files']
    ids = np.memmap(os.path.join(d, 'data', f['input_ids']), dtype='<i4', mode='r')
    off = np.memmap(os.path.join(d, 'data', f['offsets']), dtype='<i8', mode='r')
    lab = np.memmap(os.path.join(d, 'data', f['labels']), dtype='<i4', mode='r') if 'labels' in f else None
    assert off.shape[0] == info['count'] + 1 and ids.shape[0] == info['num_tokens']
    rows = [ids[off[i]:off[i + 1]].tolist() for i in range(info['count'])]
    labels = [lab[off[i]:off[i + 1]].tolist() for i in range(info['count'])] if lab is not None else None
    ds = train.TokenDataset(os.path.join(d, 'data'), split)
    assert len(ds) == len(rows)
    for i, r in enumerate(rows):
        assert ds[i]['input_ids'].tolist() == r
        assert ds[i]['labels'].tolist() == (labels[i] if labels is not None else r)
    out[split] = {'ids': rows, 'labels': labels}
if pad_n:
    ds = train.TokenDataset(os.path.join(d, 'data'), 'train')
    out['padded'] = {k: v.tolist() for k, v in train.pad_batch([ds[i] for i in range(pad_n)], int(meta['pad_id'])).items()}
else:
    out['padded'] = None
print(json.dumps(out))
`;
  return JSON.parse(execFileSync(PYTHON, ['-B', '-c', script, launchDir, String(padN)], { maxBuffer: 1 << 28, encoding: 'utf8' }));
}

function recordsOf(data: PreparedData['train']): { ids: number[][]; labels: number[][] } {
  const ids: number[][] = [];
  const labels: number[][] = [];
  for (let i = 0; i < data.length; i++) {
    const b = data.batch([i]);
    ids.push(Array.from(b.inputIds));
    labels.push(Array.from(b.labels));
  }
  return { ids, labels };
}

let root: string;

/** Runs the settings part of a launch.sh (everything before the argument loop) as a script file, then `tail`. */
function launchVars(sh: string, tail: string, env: Record<string, string>): string {
  const file = path.join(root, `vars-${process.hrtime.bigint()}.sh`);
  writeFileSync(file, `${sh.split('\nPASS=()')[0]}\n${tail}\n`);
  return execFileSync('bash', [file], { encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: root, ...env } });
}
let zhDir: string;
let sftDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-emit-'));
  zhDir = path.join(root, 'zh');
  sftDir = path.join(root, 'sft');
  await fs.mkdir(zhDir);
  await fs.mkdir(sftDir);
  await fs.copyFile(path.join(FIXTURES, 'train/zh_text.txt'), path.join(zhDir, 'zh_text.txt'));
  const records = JSON.parse(await fs.readFile(path.join(FIXTURES, 'data/alpaca_zh_demo.json'), 'utf8')).slice(0, 48);
  await fs.writeFile(path.join(sftDir, 'train.json'), JSON.stringify(records.slice(0, 40)));
  await fs.writeFile(path.join(root, 'valid.json'), JSON.stringify(records.slice(40)));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const pretrainFlags = (emit: string) => [
  'pretrain',
  '--stage',
  '2',
  '--model-name-or-path',
  TINY_LLAMA,
  '--tokenizer-name-or-path',
  ZH_TOKENIZER,
  '--dataset-dir',
  zhDir,
  '--output-dir',
  path.join(root, 'pt-out'),
  '--block-size',
  '64',
  '--validation-split-percentage',
  '5',
  '--lora-rank',
  '4',
  '--lora-alpha',
  '16',
  '--trainable',
  'q_proj,k_proj,v_proj,o_proj',
  '--modules-to-save',
  'embed_tokens,lm_head',
  '--max-steps',
  '8',
  '--per-device-train-batch-size',
  '4',
  '--learning-rate',
  '2e-3',
  '--lr-scheduler-type',
  'cosine',
  '--warmup-ratio',
  '0.05',
  '--do-eval',
  '--eval-steps',
  '4',
  '--logging-steps',
  '2',
  '--seed',
  '42',
  '--threads',
  '2',
  '--fp16',
  '--emit-launch',
  emit,
];

describe('--emit-launch: pre-training stage 2', () => {
  let dir: string;
  let stderr: string;

  beforeAll(async () => {
    dir = path.join(root, 'pt-launch');
    const r = await cli(pretrainFlags(dir));
    expect(r.stderr.split('\n').filter((l) => l.startsWith('cllama-train:') && !l.includes('no counterpart'))).toEqual([]);
    expect(r.code).toBe(0);
    stderr = r.stderr;
  });

  it('writes a complete folder and nothing beside it', async () => {
    const files = (await fs.readdir(dir)).sort();
    expect(files).toEqual(['README.md', 'data', 'ds_zero2.json', 'launch.json', 'launch.sh', 'requirements.txt', 'tokenizer', 'train.py']);
    expect((await fs.readdir(path.join(dir, 'data'))).sort()).toEqual([
      'eval_input_ids.bin',
      'eval_offsets.bin',
      'meta.json',
      'train_input_ids.bin',
      'train_offsets.bin',
    ]);
    expect(await fs.readdir(path.join(dir, 'tokenizer'))).toEqual(['tokenizer.model']);
    expect(statSync(path.join(dir, 'launch.sh')).mode & 0o111).not.toBe(0);
    expect((await fs.readdir(root)).filter((n) => n.startsWith('.'))).toEqual([]); // no temp sibling left
    expect(existsSync(path.join(root, 'pt-out'))).toBe(false); // training output is train.py's business
    execFileSync('bash', ['-n', path.join(dir, 'launch.sh')]);
    const sh = await fs.readFile(path.join(dir, 'launch.sh'), 'utf8');
    for (const p of ['--nnodes', '--nproc_per_node', '--node_rank', '--master_addr', '--master_port']) expect(sh).toContain(p);
    const ds = JSON.parse(await fs.readFile(path.join(dir, 'ds_zero2.json'), 'utf8'));
    expect(ds.zero_optimization).toMatchObject({
      stage: 2,
      allgather_bucket_size: 1e8,
      reduce_bucket_size: 1e8,
      overlap_comm: true,
      contiguous_gradients: true,
    });
    expect([ds.fp16.enabled, ds.bf16.enabled, ds.gradient_accumulation_steps, ds.gradient_clipping, ds.train_micro_batch_size_per_gpu]).toEqual([
      'auto',
      'auto',
      'auto',
      'auto',
      'auto',
    ]);
    const req = await fs.readFile(path.join(dir, 'requirements.txt'), 'utf8');
    for (const p of ['torch', 'transformers', 'peft', 'accelerate', 'safetensors', 'sentencepiece', 'numpy'])
      expect(req).toMatch(new RegExp(`^${p}==\\d+\\.\\d+`, 'm'));
    expect(req).toMatch(/^# deepspeed==/m);
  });

  it('train.py compiles', async () => {
    const cfile = path.join(root, 'train.pyc');
    execFileSync(PYTHON, ['-c', 'import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)', path.join(dir, 'train.py'), cfile]);
    expect(existsSync(cfile)).toBe(true);
  });

  it('launch.json maps every flag, and the CLI names the ones that cannot map', async () => {
    const j = JSON.parse(await fs.readFile(path.join(dir, 'launch.json'), 'utf8'));
    expect(j.format).toBe('cllama-launch/1');
    expect(j.train_kind).toBe('lora');
    const byFlag = new Map<string, { value: unknown; where: string; train_py?: string; hf?: string }>(j.flags.map((f: { flag: string }) => [f.flag, f]));
    expect(byFlag.get('--learning-rate')).toMatchObject({
      value: 0.002,
      where: 'train.py',
      train_py: '--learning_rate',
      hf: 'TrainingArguments.learning_rate',
    });
    expect(byFlag.get('--lora-rank')).toMatchObject({ value: 4, train_py: '--lora_rank', hf: 'LoraConfig.r' });
    expect(byFlag.get('--block-size')).toMatchObject({ value: 64, where: 'data' });
    expect(byFlag.get('--threads')).toMatchObject({ value: 2, where: 'n/a' });
    expect(byFlag.get('--stage')).toMatchObject({ value: 2, train_py: '--train_kind' });
    expect(j.train_py_args).toMatchObject({
      train_kind: 'lora',
      lora_rank: 4,
      lora_alpha: 16,
      trainable: 'q_proj,k_proj,v_proj,o_proj',
      modules_to_save: 'embed_tokens,lm_head',
      max_steps: 8,
      per_device_train_batch_size: 4,
      learning_rate: 0.002,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.05,
      do_eval: true,
      eval_steps: 4,
      logging_steps: 2,
      seed: 42,
      precision: 'fp16',
      model_name_or_path: TINY_LLAMA,
      output_dir: path.join(root, 'pt-out'),
      peft_path: null,
    });
    expect(j.python_flags).toEqual([expect.objectContaining({ flag: '--fp16', train_py: '--precision' })]);
    expect(j.not_applicable.map((f: { flag: string }) => f.flag)).toContain('--threads');
    expect(stderr).toMatch(/^cllama-train: --threads has no counterpart on torchrun/m);
    // every flag train.py receives is one it accepts: parse them with train.py's own parser (numpy-only import)
    const parsed = JSON.parse(
      execFileSync(PYTHON, ['-B', '-c', 'import sys,json; sys.path.insert(0, sys.argv[1]); import train; print(json.dumps(vars(train.parse_args([]))))', dir], {
        encoding: 'utf8',
      }),
    );
    for (const [k, v] of Object.entries(j.train_py_args)) expect(parsed[k], k).toEqual(v);
  });

  it("the token files read back with numpy equal cllama-train's own blocks and split", async () => {
    const tok = await loadTokenizer(ZH_TOKENIZER);
    const ours = await preparePretrainData(
      { datasetDir: zhDir, cacheRoot: path.join(root, 'pt-cache'), blockSize: 64, validationSplitPercentage: 5, seed: 42 },
      tok,
    );
    try {
      const py = readWithNumpy(dir);
      const train = recordsOf(ours.train);
      const ev = recordsOf(ours.eval!);
      expect(train.ids.length).toBeGreaterThan(200);
      expect(ev.ids.length).toBeGreaterThan(5);
      expect(py.train.ids).toEqual(train.ids);
      expect(py.train.labels).toBeNull(); // pre-training: labels = input ids
      expect(train.labels).toEqual(train.ids);
      expect(py.eval!.ids).toEqual(ev.ids);
      const meta = JSON.parse(await fs.readFile(path.join(dir, 'data/meta.json'), 'utf8'));
      expect(meta).toMatchObject({
        format: 'cllama-launch-data/1',
        mode: 'pretrain',
        block_size: 64,
        pad_id: tok.padId ?? 0,
        split: { seed: 42, validation_split_percentage: 5 },
      });
      expect(meta.tokenizer.vocab_size).toBe(tok.vocabSize);
      expect(meta.sources).toEqual([expect.objectContaining({ file: path.join(zhDir, 'zh_text.txt'), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
      expect(meta.splits.train).toMatchObject({ count: train.ids.length, num_tokens: 64 * train.ids.length, min_length: 64, max_length: 64 });
    } finally {
      ours.close();
    }
  });
});

describe('--emit-launch: SFT from an adapter', () => {
  let dir: string;

  beforeAll(async () => {
    dir = path.join(root, 'sft-launch');
    const r = await cli([
      'sft',
      '--model-name-or-path',
      TINY_LLAMA,
      '--tokenizer-name-or-path',
      ZH_TOKENIZER,
      '--dataset-dir',
      sftDir,
      '--validation-file',
      path.join(root, 'valid.json'),
      '--output-dir',
      path.join(root, 'sft-out'),
      '--peft-path',
      path.join(TINY_LLAMA, 'lora'),
      '--max-seq-length',
      '256',
      '--per-device-train-batch-size',
      '4',
      '--max-steps',
      '10',
      '--do-eval',
      '--bf16',
      '--gradient-checkpointing',
      'false',
      '--emit-launch',
      dir,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ launch_dir: dir, train_kind: 'lora', train_records: 40, eval_records: 8, not_applicable: [] });
  });

  it('exports input_ids + labels exactly as the collator sees them, and pads like cllama', async () => {
    const tok = await loadTokenizer(ZH_TOKENIZER);
    const ours = await prepareSftData(
      {
        datasetDir: sftDir,
        cacheRoot: path.join(root, 'sft-cache'),
        validationFile: path.join(root, 'valid.json'),
        maxSeqLength: 256,
        validationSplitPercentage: 5,
        seed: 42,
      },
      tok,
    );
    try {
      const py = readWithNumpy(dir, 4);
      const train = recordsOf(ours.train);
      const ev = recordsOf(ours.eval!);
      expect(py.train.ids).toEqual(train.ids);
      expect(py.train.labels).toEqual(train.labels);
      expect(py.eval!.ids).toEqual(ev.ids);
      expect(py.eval!.labels).toEqual(ev.labels);
      expect(train.labels[0]!.filter((l) => l === -100).length).toBeGreaterThan(5); // prompt tokens are masked
      expect(new Set(train.ids.map((r) => r.length)).size).toBeGreaterThan(3); // lengths differ: padding matters
      // train.py's pad_batch on records 0..3 = cllama's collate on the same records
      const b = ours.train.batch([0, 1, 2, 3]);
      const rows = (a: Int32Array) => Array.from({ length: b.batch }, (_, i) => Array.from(a.subarray(i * b.seqLen, (i + 1) * b.seqLen)));
      expect(py.padded!.input_ids).toEqual(rows(b.inputIds));
      expect(py.padded!.labels).toEqual(rows(b.labels));
      const lengths = train.ids.slice(0, 4).map((r) => r.length);
      expect(py.padded!.attention_mask).toEqual(lengths.map((n) => Array.from({ length: b.seqLen }, (_, i) => (i < n ? 1 : 0))));
      expect(
        collate(
          train.ids.slice(0, 4).map((ids, i) => ({ inputIds: ids, labels: train.labels[i] })),
          tok.padId ?? 0,
        ).inputIds,
      ).toEqual(b.inputIds);
    } finally {
      ours.close();
    }
  });

  it('continues the adapter trainably and records the Python-script flags', async () => {
    const j = JSON.parse(await fs.readFile(path.join(dir, 'launch.json'), 'utf8'));
    expect(j.train_py_args).toMatchObject({
      train_kind: 'lora',
      peft_path: path.join(TINY_LLAMA, 'lora'),
      precision: 'bf16',
      gradient_checkpointing: false,
      max_steps: 10,
    });
    expect(j.flags.find((f: { flag: string }) => f.flag === '--peft-path').hf).toContain('is_trainable=True');
    expect(j.flags.find((f: { flag: string }) => f.flag === '--stage')).toBeUndefined();
    expect(await fs.readFile(path.join(dir, 'train.py'), 'utf8')).toContain('PeftModel.from_pretrained(model, args.peft_path, is_trainable=True)');
    const sh = await fs.readFile(path.join(dir, 'launch.sh'), 'utf8');
    expect(sh).toContain(`RECORDED_PEFT_PATH='${path.join(TINY_LLAMA, 'lora')}'`);
    const peft = (env: Record<string, string>) => launchVars(sh, `printf '%s' "$PEFT_PATH"`, env);
    expect(peft({})).toBe(path.join(TINY_LLAMA, 'lora'));
    expect(peft({ PEFT_PATH: '' })).toBe(''); // empty: start a fresh adapter
    expect(peft({ PEFT_PATH: '/gpu/out/stage2' })).toBe('/gpu/out/stage2');
  });
});

describe('--emit-launch: refusals write nothing', () => {
  // exit 2: a flag value the trainer's flag table refuses (usage); exit 1: what the launch emitter refuses
  const cases: Array<[string, (dir: string) => string[], RegExp, number]> = [
    ['--dry-run with --emit-launch', (d) => [...pretrainFlags(d), '--dry-run'], /give one of them/, 1],
    ['an unsupported --modules-to-save', (d) => [...pretrainFlags(d), '--modules-to-save', 'norm'], /--modules-to-save:? 'norm' is not supported/, 2],
    ['--fp16 and --bf16', (d) => [...pretrainFlags(d), '--bf16'], /--fp16 and --bf16 are both set/, 1],
    ['a model folder without config.json', (d) => [...pretrainFlags(d), '--model-name-or-path', path.join(root, 'zh')], /--model-name-or-path/, 1],
    ['--emit-launch equal to --output-dir', (d) => [...pretrainFlags(d), '--output-dir', d], /same folder/, 1],
    ['a bad --lr-scheduler-type', (d) => [...pretrainFlags(d), '--lr-scheduler-type', 'cyclic'], /lr-scheduler-type/, 2],
  ];
  for (const [name, flags, message, code] of cases) {
    it(name, async () => {
      const dir = path.join(root, `refused-${name.replace(/\W+/g, '-')}`);
      const r = await cli(flags(dir));
      expect(r.code).toBe(code);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^cllama-train: /);
      expect(r.stderr).toMatch(message);
      expect(existsSync(dir)).toBe(false);
    });
  }

  it('a cllama-train checkpoint as --resume-from-checkpoint (HF cannot resume it)', async () => {
    const ckpt = path.join(root, 'ours/checkpoint-4');
    await fs.mkdir(ckpt, { recursive: true });
    await fs.writeFile(path.join(ckpt, 'trainer_state.json'), JSON.stringify({ format: 'cllama-trainer-state/1', globalStep: 4 }));
    const dir = path.join(root, 'refused-resume');
    const r = await cli([...pretrainFlags(dir), '--resume-from-checkpoint', ckpt]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cllama-train: .*cllama-train checkpoint.*--peft-path/);
    expect(existsSync(dir)).toBe(false);
  });

  it('an existing non-empty folder is left alone', async () => {
    const dir = path.join(root, 'mine');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'notes.txt'), 'keep me');
    const r = await cli(pretrainFlags(dir));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^cllama-train: --emit-launch .* exists and is not empty; remove it or choose another folder/);
    expect(await fs.readdir(dir)).toEqual(['notes.txt']);
    expect(await fs.readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});

describe('the launch plan (pure)', () => {
  const base = { modelNameOrPath: TINY_LLAMA, tokenizerNameOrPath: ZH_TOKENIZER, datasetDir: '/data', outputDir: '/out', emitLaunch: '/launch' };

  it('stage 1 trains embed_tokens only; full trains everything; neither has an adapter', async () => {
    const { buildLaunchPlan } = await import('../src/launch/plan.js');
    const { resolveArgs } = await import('../src/train/options.js');
    const s1 = buildLaunchPlan(await resolveArgs('pretrain', { ...base, stage: '1' }));
    expect(s1.trainPyArgs).toMatchObject({ train_kind: 'embeddings', modules_to_save: 'embed_tokens', trainable: '', peft_path: null });
    const full = buildLaunchPlan(await resolveArgs('pretrain', { ...base, stage: 'full' }));
    expect(full.trainPyArgs).toMatchObject({ train_kind: 'full', modules_to_save: '', trainable: '' });
    const sft = buildLaunchPlan(await resolveArgs('sft', base));
    expect(sft.trainPyArgs).toMatchObject({
      train_kind: 'lora',
      trainable: 'q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj',
      modules_to_save: 'embed_tokens,lm_head',
      lora_rank: 8,
      lora_alpha: 32,
      lora_dropout: 0.05,
    });
  });

  it('the Python-script flags become train.py arguments; bad values are refused', async () => {
    const { buildLaunchPlan } = await import('../src/launch/plan.js');
    const { resolveArgs } = await import('../src/train/options.js');
    const raw = { torchDtype: 'bfloat16', gradientCheckpointing: 'false', deepspeed: 'my_ds.json', ddpTimeout: '30000', preprocessingNumWorkers: '8' };
    const plan = buildLaunchPlan(await resolveArgs('sft', { ...base, ...raw }), raw);
    expect(plan.trainPyArgs).toMatchObject({
      torch_dtype: 'bfloat16',
      gradient_checkpointing: false,
      deepspeed: 'my_ds.json',
      ddp_timeout: 30000,
      precision: 'auto',
    });
    expect(plan.notApplicableGiven.map((f) => f.flag)).toEqual(['--preprocessing-num-workers']);
    const bad = { torchDtype: 'int8' };
    await expect((async () => buildLaunchPlan(await resolveArgs('sft', { ...base, ...bad }), bad))()).rejects.toThrow(/--torch-dtype int8/);
  });

  it('launch.sh quotes recorded paths and keeps every torchrun parameter overridable', async () => {
    const { buildLaunchPlan, launchScript } = await import('../src/launch/plan.js');
    const { resolveArgs } = await import('../src/train/options.js');
    const odd = "/tmp/it's here/out dir";
    const sh = launchScript(buildLaunchPlan(await resolveArgs('sft', { ...base, outputDir: odd })).trainPyArgs);
    const out = launchVars(sh, `printf '%s|%s|%s|%s' "$OUTPUT_DIR" "$NNODES" "$MASTER_PORT" "$PRECISION"`, { NNODES: '4' });
    expect(out).toBe(`${odd}|4|29500|auto`);
    const overridden = launchVars(sh, `printf '%s' "$OUTPUT_DIR"`, { OUTPUT_DIR: '/elsewhere' });
    expect(overridden).toBe('/elsewhere');
  });
});

describe('train.py helpers (numpy-only, no torch here)', () => {
  it('maps TrainingArguments names onto the fields of transformers 4.4x and 5.15+ (stand-in dataclasses with those field sets)', () => {
    const script = `
import dataclasses, json, sys, types
sys.path.insert(0, sys.argv[1])
import train
@dataclasses.dataclass
class V4:  # 4.4x: evaluation_strategy already renamed, warmup_ratio present
    output_dir: str = None; eval_strategy: str = 'no'; warmup_ratio: float = 0.0; warmup_steps: int = 0; max_steps: int = -1; eval_on_start: bool = False
@dataclasses.dataclass
class V5:  # 5.15+: warmup_ratio removed, warmup_steps takes a ratio < 1
    output_dir: str = None; eval_strategy: str = 'no'; warmup_steps: float = 0; max_steps: int = -1
out = {}
for name, cls in (('v4', V4), ('v5', V5)):
    tf = types.SimpleNamespace(TrainingArguments=cls)
    kw = lambda **k: dict(output_dir='o', evaluation_strategy='steps', warmup_steps=0, max_steps=8, eval_on_start=True, save_safetensors=True, **k)
    out[name] = [dataclasses.asdict(train.training_arguments(tf, kw(warmup_ratio=r))) for r in (0.05, 1.0, 0.0)]
    try:
        train.training_arguments(tf, dict(output_dir='o', warmup_ratio=1.0, warmup_steps=0, max_steps=-1))
        out[name + '_full_warmup_without_max_steps'] = 'accepted'
    except train.LaunchError as e:
        out[name + '_full_warmup_without_max_steps'] = str(e)
print(json.dumps(out))
`;
    const out = JSON.parse(
      execFileSync(PYTHON, ['-B', '-c', script, path.resolve(path.dirname(CLI), '../launch-template')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .trim()
        .split('\n')
        .at(-1)!,
    );
    expect(out.v4.map((a: { warmup_ratio: number; warmup_steps: number; eval_strategy: string }) => [a.eval_strategy, a.warmup_ratio, a.warmup_steps])).toEqual(
      [
        ['steps', 0.05, 0],
        ['steps', 1, 0],
        ['steps', 0, 0],
      ],
    );
    expect(out.v5.map((a: { warmup_steps: number; eval_strategy: string }) => [a.eval_strategy, a.warmup_steps])).toEqual([
      ['steps', 0.05],
      ['steps', 8],
      ['steps', 0],
    ]);
    expect(out.v4_full_warmup_without_max_steps).toBe('accepted');
    expect(out.v5_full_warmup_without_max_steps).toMatch(/needs --max_steps/);
  });

  it('output folder rules: fresh, resume the latest checkpoint-N, refuse other content, overwrite removes old checkpoints', async () => {
    const dir = path.join(root, 'py-out');
    await fs.mkdir(path.join(dir, 'checkpoint-4'), { recursive: true });
    await fs.mkdir(path.join(dir, 'checkpoint-12'));
    const other = path.join(root, 'py-other');
    await fs.mkdir(other);
    await fs.writeFile(path.join(other, 'notes.txt'), 'x');
    const script = `
import json, sys, types
sys.path.insert(0, sys.argv[1])
import train
ns = lambda d, o=False: types.SimpleNamespace(resume_from_checkpoint=None, output_dir=d, overwrite_output_dir=o)
out = {'fresh': train.check_output_dir(ns(sys.argv[4])), 'resume': train.check_output_dir(ns(sys.argv[2]))}
try:
    train.check_output_dir(ns(sys.argv[3])); out['other'] = 'accepted'
except train.LaunchError as e:
    out['other'] = str(e)
out['overwrite'] = train.check_output_dir(ns(sys.argv[2], True))
print(json.dumps(out))
`;
    const out = JSON.parse(
      execFileSync(PYTHON, ['-B', '-c', script, path.resolve(path.dirname(CLI), '../launch-template'), dir, other, path.join(root, 'py-absent')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .trim()
        .split('\n')
        .at(-1)!,
    );
    expect(out.fresh).toBeNull();
    expect(out.resume).toBe(path.join(dir, 'checkpoint-12'));
    expect(out.other).toMatch(/is not empty and holds no checkpoint-N to resume/);
    expect(out.overwrite).toBeNull();
    expect(await fs.readdir(dir)).toEqual([]);
    expect(await fs.readdir(other)).toEqual(['notes.txt']);
  });
});

describe('--emit-launch paths and refusals (issue 21, class 10)', () => {
  const flagsAt = (emit: string, out = 'rel-out') => [
    'pretrain',
    '--stage',
    '2',
    '--model-name-or-path',
    path.relative(root, TINY_LLAMA),
    '--tokenizer-name-or-path',
    path.relative(root, ZH_TOKENIZER),
    '--dataset-dir',
    'zh',
    '--output-dir',
    out,
    '--peft-path',
    path.relative(root, path.join(TINY_LLAMA, 'lora')),
    '--block-size',
    '64',
    '--max-steps',
    '2',
    '--emit-launch',
    emit,
  ];
  const cliAt = async (cwd: string, args: string[]) => {
    try {
      const { stdout, stderr } = await run('node', [CLI, ...args], { cwd, maxBuffer: 1 << 26 });
      return { stdout, stderr, code: 0 };
    } catch (err) {
      const e = err as { stdout: string; stderr: string; code: number };
      return { stdout: e.stdout, stderr: e.stderr, code: e.code };
    }
  };

  it('relative paths are recorded absolute, so launch.sh finds them from any directory', async () => {
    const r = await cliAt(root, flagsAt('rel-launch'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(await fs.readFile(path.join(root, 'rel-launch/launch.json'), 'utf8'));
    expect(j.train_py_args).toMatchObject({
      model_name_or_path: TINY_LLAMA,
      output_dir: path.join(root, 'rel-out'),
      peft_path: path.join(TINY_LLAMA, 'lora'),
    });
    const meta = JSON.parse(await fs.readFile(path.join(root, 'rel-launch/data/meta.json'), 'utf8'));
    expect(meta.tokenizer.source).toBe(ZH_TOKENIZER);
    const sh = await fs.readFile(path.join(root, 'rel-launch/launch.sh'), 'utf8');
    const file = path.join(root, 'vars-abs.sh');
    writeFileSync(file, `${sh.split('\nPASS=()')[0]}\nprintf '%s|%s|%s' "$MODEL_PATH" "$OUTPUT_DIR" "$PEFT_PATH"\n`);
    const out = execFileSync('bash', [file], { cwd: '/', encoding: 'utf8', env: { PATH: process.env.PATH! } });
    expect(out).toBe(`${TINY_LLAMA}|${path.join(root, 'rel-out')}|${path.join(TINY_LLAMA, 'lora')}`);
  });

  it("--emit-launch '' is a usage error (it used to train)", async () => {
    const r = await cliAt(root, flagsAt('', 'empty-out'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['cllama-train: --emit-launch needs a folder to write (got an empty path)']);
    expect(existsSync(path.join(root, 'empty-out'))).toBe(false);
  });

  it('a launch folder inside --output-dir is refused up front (train.py would refuse that output folder)', async () => {
    const r = await cliAt(root, flagsAt('inside-out/launch', 'inside-out'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^cllama-train: --emit-launch .*inside-out\/launch is inside --output-dir .*inside-out; .*put the launch folder beside it/);
    expect(existsSync(path.join(root, 'inside-out'))).toBe(false);
  });

  it('the printed "run it:" line is shell-quoted: pasting it runs launch.sh, never a $(…) in the name', async () => {
    const name = "d$(touch PWN) `touch PWN2` it's";
    const r = await cliAt(root, flagsAt(name, 'quoted-out'));
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('run it: '))!;
    const word = line.slice('run it: bash '.length).split('   (see ')[0]!;
    const pasted = execFileSync('bash', ['-c', `printf '%s' ${word}`], { cwd: root, encoding: 'utf8' });
    expect(pasted).toBe(path.join(root, name, 'launch.sh'));
    expect(existsSync(path.join(root, 'PWN'))).toBe(false);
    expect(existsSync(path.join(root, 'PWN2'))).toBe(false);
    // a plain path stays as it is
    const plain = await cliAt(root, flagsAt('plain-launch', 'plain-out'));
    expect(plain.stdout).toContain(`run it: bash ${path.join(root, 'plain-launch/launch.sh')}   (see`);
  });
});

describe("train.py's ports of cllama's seeded streams (numpy only)", () => {
  it('epoch_order = Xoshiro128.fromSeed(seed, epoch).permutation(n); resized_rows = resizedEmbeddingRows; Mulberry32Normals = Mulberry32.normal()', async () => {
    const { Xoshiro128 } = await import('@cllama/core');
    const { resizedEmbeddingRows } = await import('../src/model/resize.js');
    const orders: Array<[number, number, number]> = [
      [42, 0, 10],
      [42, 1, 1000],
      [0, 3, 777],
      [4294967295, 2, 5],
      [7, 0, 1],
    ];
    const wide = Float32Array.from({ length: 40 * 8 }, (_, i) => Math.sin(i * 1.7) * 0.1 + (i % 8) * 0.01); // 1e-9·cov positive definite: drawn rows
    const narrow = Float32Array.from({ length: 4 * 8 }, (_, i) => Math.cos(i)); // fewer rows than width: every new row = the mean
    const input = { orders, wide: Array.from(wide), narrow: Array.from(narrow) };
    const script = `
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import train
d = json.loads(sys.stdin.read())
out = {'orders': [train.epoch_order(s, e, n).tolist() for s, e, n in d['orders']]}
out['wide'] = train.resized_rows(np.array(d['wide'], dtype=np.float32).reshape(40, 8), 45, 7).reshape(-1).tolist()
out['narrow'] = train.resized_rows(np.array(d['narrow'], dtype=np.float32).reshape(4, 8), 7, 3).reshape(-1).tolist()
g = train.Mulberry32Normals(9)
out['normals'] = [x for m in (5, 6, 1, 3) for x in g.take(m).tolist()]  # drawn in pieces: the spare carries over
sampler = train.EpochOrderSampler(6, 42)
first = list(sampler); sampler.set_epoch(1); out['sampler'] = [first, list(sampler)]
print(json.dumps(out))
`;
    const py = JSON.parse(
      execFileSync(PYTHON, ['-B', '-c', script, path.resolve(path.dirname(CLI), '../launch-template')], { input: JSON.stringify(input), encoding: 'utf8' }),
    );
    for (const [i, [s, e, n]] of orders.entries())
      expect(py.orders[i], `seed ${s} epoch ${e} n ${n}`).toEqual(Array.from(Xoshiro128.fromSeed(s, e).permutation(n)));
    expect(py.wide).toEqual(Array.from(resizedEmbeddingRows(wide, 40, 8, 45, 7)));
    expect(py.narrow).toEqual(Array.from(resizedEmbeddingRows(narrow, 4, 8, 7, 3)));
    const { Mulberry32 } = await import('@cllama/core');
    const m = Mulberry32.scrambled(9);
    const normals = Array.from({ length: 15 }, () => m.normal());
    expect(Math.max(...normals.map((x, i) => Math.abs(x - py.normals[i])))).toBeLessThan(1e-12); // cos/sin/log of two libms
    expect(py.sampler).toEqual([Array.from(Xoshiro128.fromSeed(42, 0).permutation(6)), Array.from(Xoshiro128.fromSeed(42, 1).permutation(6))]);
  });
});

describe('requirements.txt of the folder', () => {
  it('pins what npm run test:interop runs train.py with (interop/requirements.txt)', async () => {
    const { REQUIREMENTS } = await import('../src/launch/plan.js');
    const pins = (text: string) => new Map([...text.matchAll(/^([A-Za-z0-9_-]+)==(\S+)$/gm)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    const interop = pins(await fs.readFile(path.join(FIXTURES, '../interop/requirements.txt'), 'utf8'));
    const emitted = pins(REQUIREMENTS);
    expect([...emitted.keys()].sort()).toEqual(['accelerate', 'numpy', 'peft', 'safetensors', 'sentencepiece', 'torch', 'transformers']);
    for (const [name, version] of emitted) expect(interop.get(name), name).toBe(version);
  });
});
