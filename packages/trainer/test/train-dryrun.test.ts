import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveArgs } from '../src/train/options.js';
import { dryRunPlan, formatPlan } from '../src/train/plan.js';

const PKG = path.resolve(__dirname, '..');
const FIX = path.resolve(PKG, '../../test-fixtures');
const LLAMA_7B = path.join(FIX, 'train/llama-7b'); // HF LLaMA-7B config.json only: no weights needed
const MERGED = path.join(FIX, 'tokenizers/merged_reference.model'); // 49,953 pieces
let root: string;
let alpacaTokenizer: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-dry-'));
  // the Chinese-Alpaca tokenizer folder: the merged model + the [PAD] token → 49,954
  alpacaTokenizer = path.join(root, 'alpaca-tokenizer');
  await fs.mkdir(alpacaTokenizer);
  await fs.copyFile(MERGED, path.join(alpacaTokenizer, 'tokenizer.model'));
  await fs.writeFile(path.join(alpacaTokenizer, 'added_tokens.json'), JSON.stringify({ '[PAD]': 49953 }));
  await fs.writeFile(path.join(alpacaTokenizer, 'special_tokens_map.json'), JSON.stringify({ pad_token: '[PAD]' }));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('--dry-run on the LLaMA-7B config (the paper table)', () => {
  it('stage 1: 2.97%, stage 2: 6.06%, SFT with all seven targets and 49,954: 6.22%', async () => {
    const common = { modelNameOrPath: LLAMA_7B, dryRun: true, perDeviceTrainBatchSize: '1', gradientAccumulationSteps: '8' };
    const s1 = await dryRunPlan(await resolveArgs('pretrain', { ...common, tokenizerNameOrPath: MERGED, blockSize: '512', stage: '1' }));
    const s2 = await dryRunPlan(
      await resolveArgs('pretrain', {
        ...common,
        tokenizerNameOrPath: MERGED,
        blockSize: '512',
        stage: '2',
        trainable: 'q_proj,v_proj,k_proj,o_proj',
        modulesToSave: 'embed_tokens,lm_head',
      }),
    );
    const sft = await dryRunPlan(
      await resolveArgs('sft', {
        ...common,
        tokenizerNameOrPath: alpacaTokenizer,
        maxSeqLength: '512',
        trainable: 'q_proj,v_proj,k_proj,o_proj,gate_proj,down_proj,up_proj',
      }),
    );
    expect(s1.model.vocabSize).toBe(49953);
    expect(sft.model.vocabSize).toBe(49954);
    expect(s1.trainablePercent.toFixed(2)).toBe('2.97');
    expect(s2.trainablePercent.toFixed(2)).toBe('6.06');
    expect(sft.trainablePercent.toFixed(2)).toBe('6.22');
    expect(s1.trainableParameters).toBe(49953 * 4096);
    expect(s2.trainableParameters).toBe(2 * 49953 * 4096 + 32 * 4 * 8 * (4096 + 4096));
    expect(s1.tokensPerOptimizerStep).toBe(8 * 512);
    expect(s1.steps).toBeNull();
    // fp32 weights of a 6.9B model alone are ~25.6 GiB
    expect(s1.memory.weightsBytes / 2 ** 30).toBeGreaterThan(25);
    expect(s1.memory.totalBytes).toBeGreaterThan(s1.memory.weightsBytes + s1.memory.optimizerBytes);
    expect(formatPlan(s2)).toMatch(/trainable%: 6\.06%/);
  });

  it('the CLI prints the plan as JSON without loading weights, with --config keys and --max-steps', async () => {
    const cfg = path.join(root, 'sft.json');
    await fs.writeFile(
      cfg,
      JSON.stringify({
        model_name_or_path: LLAMA_7B,
        tokenizer_name_or_path: alpacaTokenizer,
        per_device_train_batch_size: 2,
        gradient_accumulation_steps: 4,
        max_seq_length: 512,
        max_steps: 6000,
      }),
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(PKG, 'src/cli.ts'), 'sft', '--config', cfg, '--dry-run', '--json'], {
      cwd: PKG,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.trainablePercent.toFixed(2)).toBe('6.22');
    expect(plan.tokensPerOptimizerStep).toBe(2 * 4 * 512);
    expect(plan.steps).toBe(6000);
    const bad = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(PKG, 'src/cli.ts'), 'pretrain', '--model-name-or-path', path.join(root, 'nope'), '--dry-run'],
      { cwd: PKG, encoding: 'utf8' },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
