/**
 * The up-front memory check: estimates against PyTorch's measured peak RSS for the same shapes, and
 * the one-line refusals (wasm heap, available memory) through the real training session on a real
 * model folder, before any weight is read.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { countTrainableParameters, createLlamaConfig, writeLlamaConfig } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINTING_HEADROOM,
  checkMemory,
  checkModelMemory,
  chooseCheckpointing,
  countParameters,
  estimateMemory,
  MemoryCheckError,
  type MemoryJob,
} from '../src/memory.js';
import { NATIVE_FACTS } from '../src/backends/native/facts.js';
import { WASM_HEAP_LIMIT_BYTES, WASM_USABLE_BYTES } from '../src/backends/wasm/facts.js';
import { FIXTURES } from './helpers.js';

const LORA7 = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const smol = createLlamaConfig({ hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3, vocabSize: 49152 });
const tinyLlama = createLlamaConfig({
  hiddenSize: 2048,
  intermediateSize: 5632,
  numHiddenLayers: 22,
  numAttentionHeads: 32,
  numKeyValueHeads: 4,
  vocabSize: 32000,
});
const lora = (seqLen: number, batchSize = 1): MemoryJob => ({ kind: 'lora', batchSize, seqLen, r: 8, targetModules: LORA7, modulesToSave: [] });

describe('estimateMemory', () => {
  it('counts the parameters of the config (SmolLM-135M shape untied: 162 M; TinyLlama-1.1B: 1.1 B)', () => {
    expect(estimateMemory(smol, lora(512)).parameters).toBeGreaterThan(160e6);
    expect(estimateMemory(smol, lora(512)).parameters).toBeLessThan(166e6);
    const t = estimateMemory(tinyLlama, lora(512));
    expect(t.parameters).toBeGreaterThan(1.09e9);
    expect(t.parameters).toBeLessThan(1.11e9);
    // LoRA r 8 on 7 projections: 0.57 % of TinyLlama trains
    expect(t.trainableParameters / t.parameters).toBeGreaterThan(0.004);
    expect(t.trainableParameters / t.parameters).toBeLessThan(0.007);
  });

  it('lands near PyTorch 1.13 peak RSS for a LoRA step at seq 512 (2.9 GB and 9.1 GB), above it for tfjs transposed copies', () => {
    const s = estimateMemory(smol, lora(512)).totalBytes / 1e9;
    expect(s).toBeGreaterThan(2.0);
    expect(s).toBeLessThan(4.0);
    const t = estimateMemory(tinyLlama, lora(512)).totalBytes / 1e9;
    expect(t).toBeGreaterThan(8.0);
    expect(t).toBeLessThan(14.0);
  });

  it('orders the jobs: inference < LoRA < full, and full adds gradients + two Adam moments', () => {
    const inf = estimateMemory(tinyLlama, { kind: 'inference', batchSize: 1, seqLen: 512 });
    const l = estimateMemory(tinyLlama, lora(512));
    const full = estimateMemory(tinyLlama, { kind: 'full', batchSize: 1, seqLen: 512 });
    expect(inf.totalBytes).toBeLessThan(l.totalBytes);
    expect(l.totalBytes).toBeLessThan(full.totalBytes);
    expect(full.trainingStateBytes).toBe(full.parameters * 4 * 3);
    expect(inf.trainingStateBytes).toBe(0);
    // activations grow with the tokens
    expect(estimateMemory(tinyLlama, lora(512, 2)).activationBytes).toBeGreaterThan(1.9 * l.activationBytes);
  });
});

describe('checkMemory', () => {
  it('refuses a LoRA step of the SmolLM shape on wasm with one line naming the estimate, the 2 GiB heap and what to do', () => {
    let err: unknown;
    try {
      checkMemory(smol, lora(512), { backend: 'wasm', availableBytes: plenty(), env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemoryCheckError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/^16\d M parameters need ~\d+\.\d GB for lora training/);
    expect(msg).toContain(
      `over the ~${(WASM_USABLE_BYTES / 1e9).toFixed(1)} GB a step can use of the wasm backend's ${(WASM_HEAP_LIMIT_BYTES / 1e9).toFixed(1)} GB heap`,
    );
    expect(msg).toContain('--backend native');
  });

  it('on wasm, matches the two calibration runs at seq 256: a 58 M full fine-tune trains, a 134 M LoRA step aborts', () => {
    const small = createLlamaConfig({ hiddenSize: 512, intermediateSize: 1376, numHiddenLayers: 8, numAttentionHeads: 8, vocabSize: 32000 });
    const gpt2 = createLlamaConfig({ hiddenSize: 768, intermediateSize: 2048, numHiddenLayers: 12, numAttentionHeads: 12, vocabSize: 32000 });
    const opts = { backend: 'wasm', availableBytes: plenty(), env: {} };
    expect(estimateMemory(small, { kind: 'full', batchSize: 1, seqLen: 256 }).parameters).toBeLessThan(60e6);
    expect(() => checkMemory(small, { kind: 'full', batchSize: 1, seqLen: 256 }, opts)).not.toThrow();
    expect(() => checkMemory(gpt2, lora(256), opts)).toThrow(MemoryCheckError);
  });

  it('lets the same step through on a backend without the heap limit when memory is there', () => {
    const e = checkMemory(smol, lora(512), { backend: 'native', availableBytes: plenty(), env: {} });
    expect(e.totalBytes).toBeGreaterThan(2e9);
  });

  it("counts native's fused layers' saved values once (not the tape's 5×) and no transposed copies there; every measured peak within 20 %, batch 1 and 8", () => {
    const native = estimateMemory(tinyLlama, lora(512), 'native');
    const plain = estimateMemory(tinyLlama, lora(512));
    // native multiplies with transpose flags: no second copy of the projections
    expect(native.projectionCopyBytes).toBe(0);
    expect(native.weightsBytes).toBe(plain.weightsBytes - plain.projectionCopyBytes);
    // per layer and token the fused kernel keeps its input and decoder-layer-graph.ts's saved values:
    // x, q, merged, h (4·2048) + k, v (2·256) + probabilities (32·512) + gate, up (2·5632) + r1, r2 + 7 LoRA t (7·8)
    const perToken = 4 * 2048 + 2 * 256 + 32 * 512 + 2 * 5632 + 2 + 7 * 8;
    // + one layer's working set inside onnxruntime (8 attention blocks, the MLP's two gradients, four hidden-sized) + the head's logits and probabilities
    const working = 512 * (8 * 32 * 512 + 2 * 5632 + 4 * 2048);
    expect(native.activationBytes).toBe((22 * 512 * perToken + working + 2 * 512 * 32000) * 4);
    expect(native.runtimeBytes).toBe(NATIVE_FACTS.runtimeBytes);
    // the JS tape's factor still counts where the op chain runs (inference, the cpu backend)
    expect(estimateMemory(tinyLlama, lora(512), 'cpu').activationBytes).toBe(5 * plain.activationBytes);
    // measured peak RSS of bench/lora-step.ts on native with the fused layers (seq 512, 2026-12-03;
    // docs/trainer.md's issue-24 table): both shapes, LoRA / stage-2 / SFT settings, with and without
    // --checkpointing
    const withCheckpointing = (job: MemoryJob): MemoryJob => ({ ...job, gradientCheckpointing: true }) as MemoryJob;
    const saving = (job: MemoryJob, targets = LORA7): MemoryJob =>
      ({ ...job, targetModules: targets, modulesToSave: ['embed_tokens', 'lm_head'] }) as MemoryJob;
    const stage2 = (job: MemoryJob) => saving(job, LORA7.slice(0, 4));
    for (const [config, job, measured] of [
      [smol, lora(512), 2.11],
      [smol, withCheckpointing(lora(512)), 1.5],
      [smol, stage2(lora(512)), 2.8],
      [smol, withCheckpointing(stage2(lora(512))), 2.19],
      [smol, saving(lora(512)), 2.9],
      [smol, withCheckpointing(saving(lora(512))), 2.28],
      [tinyLlama, lora(512), 7.24],
      [tinyLlama, withCheckpointing(lora(512)), 5.81],
      [tinyLlama, stage2(lora(512)), 8.81],
      [tinyLlama, withCheckpointing(stage2(lora(512))), 7.4],
      [tinyLlama, saving(lora(512)), 9.0],
      [tinyLlama, withCheckpointing(saving(lora(512))), 7.63],
      // cllama-train sft with its default flags (batch 8 × 512, checkpointing turned on by the check)
      [tinyLlama, withCheckpointing(saving(lora(512, 8))), 13.96],
      [smol, saving(lora(512, 8)), 8.43],
    ] as const) {
      const estimate = estimateMemory(config, job, 'native').totalBytes / 1e9;
      expect(estimate, JSON.stringify(job)).toBeGreaterThan(measured * 0.8);
      expect(estimate, JSON.stringify(job)).toBeLessThan(measured * 1.2);
    }
  });

  it('a 24 GB machine takes both shapes at the default batch (8 × 512) on native: SmolLM as it is, TinyLlama with checkpointing turned on and said', () => {
    const sft = (batchSize: number): MemoryJob => ({ ...lora(512, batchSize), modulesToSave: ['embed_tokens', 'lm_head'] }) as MemoryJob;
    const opts = { backend: 'native', availableBytes: 20e9, env: {} };
    const smolChoice = chooseCheckpointing(smol, sft(8) as never, opts);
    expect(smolChoice.gradientCheckpointing).toBe(false);
    expect(smolChoice.note).toBeUndefined();
    const tiny = chooseCheckpointing(tinyLlama, sft(8) as never, opts);
    expect(tiny.gradientCheckpointing).toBe(true);
    expect(tiny.note).toMatch(
      /^gradient checkpointing on: without it 110\d M parameters need ~2\d\.\d GB for lora training \(.*batch 8 × seq 512\), more than 80 % of the 20\.0 GB of memory available; with it ~\d+\.\d GB \(--gradient-checkpointing true\|false decides it yourself\)$/,
    );
    expect(tiny.estimate.totalBytes).toBe(estimateMemory(tinyLlama, { ...sft(8), gradientCheckpointing: true } as MemoryJob, 'native').totalBytes);
  });

  it('chooseCheckpointing: off when it fits with 20 % to spare, else on when that fits, the refusal (with checkpointing) when neither does, off when the check is off', () => {
    const job = lora(512) as Exclude<MemoryJob, { kind: 'inference' }>;
    const without = estimateMemory(tinyLlama, { ...job, gradientCheckpointing: false }, 'native').totalBytes;
    const withIt = estimateMemory(tinyLlama, { ...job, gradientCheckpointing: true }, 'native').totalBytes;
    expect(withIt).toBeLessThan(without);
    const at = (availableBytes: number, env = {}) => chooseCheckpointing(tinyLlama, job, { backend: 'native', availableBytes, env });
    // off only with CHECKPOINTING_HEADROOM's share of the memory to spare
    expect(at(without / CHECKPOINTING_HEADROOM + 1e3).gradientCheckpointing).toBe(false);
    expect(at(without / CHECKPOINTING_HEADROOM - 1e3).gradientCheckpointing).toBe(true);
    expect(at(without).gradientCheckpointing).toBe(true);
    expect(at(withIt).gradientCheckpointing).toBe(true);
    expect(() => at(withIt - 1)).toThrow(
      /^110\d M parameters need ~\d\.\d GB for lora training with gradient checkpointing \(.*more than the \d\.\d GB of memory available: use a smaller model/,
    );
    expect(at(1, { CLLAMA_MEMORY_CHECK: 'off' }).gradientCheckpointing).toBe(false);
  });

  it('with gradient checkpointing, activations grow with the layers by one hidden state per token only', () => {
    const job = { ...lora(512), gradientCheckpointing: true };
    const deeper = { ...tinyLlama, numHiddenLayers: 44 };
    const a = estimateMemory(tinyLlama, job).activationBytes;
    const b = estimateMemory(deeper, job).activationBytes;
    expect(b - a).toBe(22 * 512 * tinyLlama.hiddenSize * 4);
    expect(estimateMemory(deeper, lora(512)).activationBytes - estimateMemory(tinyLlama, lora(512)).activationBytes).toBeGreaterThan(10 * (b - a));
  });

  it('refuses a full fine-tune of TinyLlama (weights, gradients and moments: 17.6 GB) against 16 GB and suggests LoRA', () => {
    expect(() => checkMemory(tinyLlama, { kind: 'full', batchSize: 1, seqLen: 512 }, { backend: 'native', availableBytes: 16e9, env: {} })).toThrow(
      /^1100 M parameters need ~\d+\.\d GB for full training .* more than the 16\.0 GB of memory available: use --gradient-checkpointing, a smaller model or LoRA/,
    );
  });

  it('counts one weight copy per data-parallel replica', () => {
    const one = estimateMemory(smol, lora(512, 2));
    const available = one.totalBytes + one.weightsBytes / 2;
    expect(() => checkMemory(smol, lora(512, 2), { backend: 'tensorflow', availableBytes: available, env: {} })).not.toThrow();
    expect(() => checkMemory(smol, lora(512, 2), { backend: 'tensorflow', availableBytes: available, replicas: 2, env: {} })).toThrow(
      /with 2 threads' model copies.*fewer --threads/,
    );
  });

  it('CLLAMA_MEMORY_CHECK=off skips the check', () => {
    expect(() =>
      checkMemory(tinyLlama, { kind: 'full', batchSize: 1, seqLen: 512 }, { backend: 'wasm', availableBytes: 1e9, env: { CLLAMA_MEMORY_CHECK: 'off' } }),
    ).not.toThrow();
  });
});

describe('checkModelMemory on a model folder', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'cllama-mem-'));
    // a TinyLlama-shaped config.json with no weights: the check must refuse before any weight is read
    await writeLlamaConfig(tmp, tinyLlama);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads config.json and refuses on wasm', async () => {
    await expect(
      checkModelMemory(tmp, { kind: 'inference', batchSize: 1, seqLen: 512 }, { backend: 'wasm', availableBytes: plenty(), env: {} }),
    ).rejects.toThrow(/of the wasm backend's 2\.1 GB heap/);
  });

  it('passes the test fixture model, and a grown tokenizer vocabulary counts', async () => {
    const fixture = path.join(FIXTURES, 'tiny-llama');
    const e = await checkModelMemory(fixture, lora(64), { backend: 'wasm', availableBytes: plenty(), env: {} });
    expect(e!.parameters).toBeGreaterThan(0);
    const grown = await checkModelMemory(fixture, lora(64), { backend: 'wasm', availableBytes: plenty(), env: {}, vocabSize: 32000 });
    expect(grown!.parameters).toBeGreaterThan(e!.parameters);
  });

  it('cllama-train score refuses it up front with one line and exit code 1, not a wasm abort', async () => {
    writeFileSync(path.join(tmp, 'ids.json'), JSON.stringify([[1, 2, 3, 4]]));
    const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
    const err = (await promisify(execFile)('node', [cli, 'score', '--model', tmp, '--input-ids', path.join(tmp, 'ids.json'), '--backend', 'wasm']).catch(
      (e) => e,
    )) as {
      code: number;
      stderr: string;
    };
    expect(err.code).toBe(1);
    expect(err.stderr.trim().split('\n')).toHaveLength(1);
    expect(err.stderr).toMatch(/^cllama-train: 1100 M parameters need ~\d+\.\d GB for inference .* of the wasm backend's 2\.1 GB heap: use --backend native/);
  });

  it('leaves a folder without config.json to the loader', async () => {
    await expect(checkModelMemory(path.join(tmp, 'missing'), lora(64), { backend: 'wasm', env: {} })).resolves.toBeUndefined();
  });
});

describe('gradient checkpointing left to the trainer (no flag): a real sft run on wasm', () => {
  // the tiny model at --max-seq-length 4000 (batch 1, the 20,000-piece tokenizer): ~1.8 GB estimated
  // without checkpointing, over the ~1.6 GB a wasm step can use; ~1.2 GB with it. The examples are
  // short, so the step itself is small.
  let dir: string;
  const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
  const run = (extra: string[], out: string) =>
    spawnSync(
      'node',
      [
        cli,
        'sft',
        '--backend',
        'wasm',
        '--model-name-or-path',
        path.join(FIXTURES, 'tiny-llama'),
        '--tokenizer-name-or-path',
        path.join(FIXTURES, 'tokenizers/chinese_sp.model'),
        '--dataset-dir',
        path.join(dir, 'data'),
        '--output-dir',
        path.join(dir, out),
        '--max-seq-length',
        '4000',
        '--per-device-train-batch-size',
        '1',
        '--max-steps',
        '1',
        '--validation-split-percentage',
        '0',
        '--no-progress',
        ...extra,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
  const lines = (stderr: string) =>
    stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('cllama-train: backend '));
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cllama-autockpt-'));
    await fs.mkdir(path.join(dir, 'data'));
    await fs.writeFile(
      path.join(dir, 'data', 'a.json'),
      JSON.stringify([
        { instruction: '你好', input: '', output: '世界你好' },
        { instruction: '天气', input: '', output: '今天晴' },
      ]),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('turns checkpointing on, says so in one line, and trains', () => {
    const r = run([], 'auto');
    expect(r.status, r.stderr).toBe(0);
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(
        /^cllama-train: gradient checkpointing on: without it 3 M parameters need ~1\.8 GB for lora training \(.*batch 1 × seq 4000\), over the ~1\.6 GB a step can use of the wasm backend's 2\.1 GB heap; with it ~1\.2 GB \(--gradient-checkpointing true\|false decides it yourself\)$/,
      ),
    ]);
    expect(existsSync(path.join(dir, 'auto', 'adapter_model.safetensors'))).toBe(true);
  }, 120_000);

  it('--gradient-checkpointing false is refused up front in one line; --gradient-checkpointing trains without the note', () => {
    const off = run(['--gradient-checkpointing', 'false'], 'off');
    expect(off.status).toBe(1);
    expect(lines(off.stderr)).toEqual([
      expect.stringMatching(/^cllama-train: 3 M parameters need ~1\.8 GB for lora training \(.*wasm backend's 2\.1 GB heap: use --backend native/),
    ]);
    expect(existsSync(path.join(dir, 'off'))).toBe(false);
    const on = run(['--gradient-checkpointing'], 'on');
    expect(on.status, on.stderr).toBe(0);
    expect(lines(on.stderr)).toEqual([]);
  }, 120_000);
});

function plenty(): number {
  return 1e12;
}

describe('hostile config.json sizes (issue 21 #3): the check is O(1) in the layer count and allocates nothing per weight', () => {
  it("countParameters equals @cllama/lora's per-weight count for every plan, tied or not", () => {
    const tied = createLlamaConfig({
      hiddenSize: 64,
      intermediateSize: 172,
      numHiddenLayers: 7,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      vocabSize: 512,
      tieWordEmbeddings: true,
    });
    for (const config of [smol, tinyLlama, tied]) {
      for (const plan of [
        { trainInPlace: ['embed_tokens'] },
        { lora: { r: 8, targetModules: LORA7 }, modulesToSave: ['embed_tokens', 'lm_head'] },
        { lora: { r: 4, targetModules: ['q_proj', 'v_proj'] } },
        { trainInPlace: ['embed_tokens', 'lm_head', '_proj', 'norm'] },
      ]) {
        const exact = countTrainableParameters(config, plan);
        const fast = countParameters(config, plan);
        expect([fast.trainable, fast.total, fast.percent]).toEqual([exact.trainable, exact.total, exact.percent]);
      }
    }
  });

  it('3,000,000 layers: the exact count (linear in the layers) and a refusal, without building per-layer objects', () => {
    const huge = createLlamaConfig({ hiddenSize: 64, intermediateSize: 172, numHiddenLayers: 3_000_000, numAttentionHeads: 4, vocabSize: 512 });
    const perLayer = 4 * 64 * 64 + 3 * 172 * 64 + 2 * 64; // q k v o, gate up down, two norms
    const e = estimateMemory(huge, lora(64));
    expect(e.parameters - e.trainableParameters).toBe(2 * 512 * 64 + 64 + 3_000_000 * perLayer);
    expect(() => checkMemory(huge, lora(64), { backend: 'native', availableBytes: 24e9, env: {} })).toThrow(
      /^1\d{5} M parameters need ~\d+\.\d GB for lora training .* more than the 24\.0 GB of memory available/,
    );
  });

  it('sizes at the edge of a safe integer give a finite estimate that is refused, never NaN waved through', () => {
    const big = 2 ** 52;
    const c = createLlamaConfig({ hiddenSize: big, intermediateSize: big, numHiddenLayers: 2 ** 40, numAttentionHeads: 4, vocabSize: big });
    for (const job of [lora(2 ** 30, 2 ** 20), { kind: 'full', batchSize: 2 ** 20, seqLen: 2 ** 30 } as MemoryJob]) {
      const e = estimateMemory(c, job, 'native');
      expect(Number.isFinite(e.totalBytes)).toBe(true);
      expect(() => checkMemory(c, job, { backend: 'native', availableBytes: 1e15, env: {} })).toThrow(MemoryCheckError);
      expect(() => checkMemory(c, job, { backend: 'wasm', availableBytes: 1e15, env: {} })).toThrow(/wasm backend/);
    }
  });

  it('the CLI refuses a 3,000,000-layer or 2^52-wide config.json in one line with a 96 MB V8 heap (score, sft), and --dry-run counts it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cllama-hugecfg-'));
    try {
      const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
      const tok = path.join(FIXTURES, 'tokenizers/chinese_sp.model');
      const data = path.join(dir, 'data');
      await fs.mkdir(data);
      await fs.writeFile(path.join(data, 'a.json'), JSON.stringify([{ instruction: 'a', input: '', output: 'b' }]));
      writeFileSync(path.join(dir, 'ids.json'), JSON.stringify([[1, 2, 3, 4]]));
      const run = (args: string[]) => spawnSync('node', ['--max-old-space-size=96', cli, ...args], { encoding: 'utf8', timeout: 60_000 });
      for (const [name, fields] of [
        ['layers', { num_hidden_layers: 3_000_000 }],
        ['hidden', { hidden_size: 2 ** 52, intermediate_size: 2 ** 52 }],
        ['vocab', { vocab_size: 2 ** 52 }],
        ['heads', { hidden_size: 2 ** 40, num_attention_heads: 2 ** 30, num_key_value_heads: 2 ** 30 }],
      ] as const) {
        const model = path.join(dir, name);
        await fs.mkdir(model);
        const base = JSON.parse(await fs.readFile(path.join(FIXTURES, 'tiny-llama/config.json'), 'utf8'));
        await fs.writeFile(path.join(model, 'config.json'), JSON.stringify({ ...base, ...fields }));
        const score = run(['score', '--model', model, '--input-ids', path.join(dir, 'ids.json'), '--backend', 'native']);
        expect(score.status, `${name}: ${score.stderr}`).toBe(1);
        expect(score.stderr.trim().split('\n'), name).toHaveLength(1);
        expect(score.stderr, name).toMatch(
          /^cllama-train: [\d.e+]+ M parameters need ~[\d.e+]+ GB for inference .*CLLAMA_MEMORY_CHECK=off skips this check\)$/m,
        );
        const out = path.join(dir, `out-${name}`);
        const sft = run([
          'sft',
          '--backend',
          'native',
          '--model-name-or-path',
          model,
          '--tokenizer-name-or-path',
          tok,
          '--dataset-dir',
          data,
          '--output-dir',
          out,
        ]);
        expect(sft.status, `${name}: ${sft.stderr}`).toBe(1);
        expect(
          sft.stderr
            .trim()
            .split('\n')
            .filter((l) => !l.includes('has no effect here')),
          name,
        ).toHaveLength(1);
        expect(sft.stderr, name).toMatch(/for lora training/);
        expect(existsSync(out), name).toBe(false);
        const dry = run(['pretrain', '--stage', '2', '--model-name-or-path', model, '--dry-run', '--json']);
        expect(dry.status, `${name}: ${dry.stderr}`).toBe(0);
        expect(JSON.parse(dry.stdout).totalParameters, name).toBeGreaterThan(1e9);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
