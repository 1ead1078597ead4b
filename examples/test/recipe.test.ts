// The whole recipe on the tiniest sizes (preset fast), then every artifact is loaded back by the
// tool a user would use: the merged HF folder by `cllama-train score`, the adapters by
// `cllama-lora info`, the tokenizer by transformers.js. A second run must resume, not redo.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, type Cli } from '../src/tools.js';

const examplesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const recipe = path.join(examplesDir, 'dist/recipe.js');

let runsDir: string;
let runDir: string;
let firstOutput: string;

function cli(name: Cli, args: string[]): string {
  return execFileSync(process.execPath, [cliPath(name), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function runRecipe(): string {
  return execFileSync(process.execPath, [recipe, '--preset', 'fast', '--name', 'ci', '--runs-dir', runsDir, '--backend', 'wasm', '--quiet'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

beforeAll(() => {
  runsDir = mkdtempSync(path.join(tmpdir(), 'cllama-recipe-'));
  runDir = path.join(runsDir, 'ci');
  firstOutput = runRecipe();
}, 900_000);

afterAll(() => {
  if (runsDir) rmSync(runsDir, { recursive: true, force: true });
});

describe('npm run recipe --preset fast', () => {
  it('writes every phase and a report with the numbers', () => {
    for (const dir of ['00-base', '01-vocab/merged', '02-stage1', '03-stage2', '04-sft', '05-merged']) {
      expect(existsSync(path.join(runDir, dir)), dir).toBe(true);
    }
    for (const dir of ['00-base', '02-stage1', '03-stage2', '04-sft']) {
      expect(existsSync(path.join(runDir, dir, 'metrics.jsonl')), `${dir}/metrics.jsonl`).toBe(true);
      expect(readFileSync(path.join(runDir, dir, 'training_plot.svg'), 'utf8')).toMatch(/^<svg|<\?xml/);
    }
    const state = JSON.parse(readFileSync(path.join(runDir, 'state.json'), 'utf8'));
    expect(Object.keys(state.phases)).toEqual(['base', 'vocab', 'stage1', 'stage2', 'sft', 'merge']);
    // the trainer ran data parallel on every core the machine has (wasm is one thread per instance)
    expect(state.backend).toBe(
      `wasm (@tensorflow/tfjs-backend-wasm), ${Math.min(availableParallelism(), 8)} training thread${availableParallelism() === 1 ? '' : 's'}`,
    );
    const vocab = state.phases.vocab.results;
    expect(vocab.mergedVocab).toBeGreaterThan(vocab.baseVocab);
    expect(vocab.tokensPerCharAfter).toBeLessThan(vocab.tokensPerCharBefore);
    const report = readFileSync(path.join(runDir, 'report.md'), 'utf8');
    expect(report).toContain('tokens per Chinese character');
    expect(report).toContain(vocab.tokensPerCharAfter.toFixed(4));
    expect(report).toContain('before SFT');
    expect(state.phases.merge.results.generations).toHaveLength(3);
    expect(firstOutput).toContain('report:');
  });

  it('the merged HF folder scores through cllama-train score, as the recipe recorded', () => {
    const out = JSON.parse(
      cli('cllama-train', [
        'score',
        '--model',
        path.join(runDir, '05-merged'),
        '--text-file',
        path.join(runDir, 'data/zh_heldout.txt'),
        '--block-size',
        '64',
        '--backend',
        'wasm',
        '--json',
      ]),
    );
    const recorded = JSON.parse(readFileSync(path.join(runDir, 'state.json'), 'utf8')).phases.merge.results.heldoutAfter;
    expect(out.tokens).toBe(recorded.tokens);
    expect(out.loss).toBeCloseTo(recorded.loss, 4);
    expect(Number.isFinite(out.perplexity)).toBe(true);
  });

  it('the adapters load through cllama-lora info', () => {
    for (const dir of ['03-stage2', '04-sft']) {
      const info = JSON.parse(cli('cllama-lora', ['info', path.join(runDir, dir), '--json']));
      expect(JSON.stringify(info)).toMatch(/q_proj/);
      expect(JSON.stringify(info)).toMatch(/embed_tokens/);
    }
  });

  it('the merged tokenizer loads in transformers.js and agrees with SentencePiece', async () => {
    const { AutoTokenizer, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.localModelPath = runDir + path.sep;
    const hf = await AutoTokenizer.from_pretrained('05-merged');
    const { loadTokenizer } = await import('@cllama/tokenizer-merge');
    const sp = await loadTokenizer(path.join(runDir, '05-merged'));
    const lines = readFileSync(path.join(runDir, 'data/zh_heldout.txt'), 'utf8').split('\n').filter(Boolean).slice(0, 20);
    for (const line of lines) {
      expect(Array.from(hf.encode(line) as number[])).toEqual(sp.encode(line, { addBos: true }));
    }
    expect(sp.vocabSize).toBe(JSON.parse(readFileSync(path.join(runDir, 'state.json'), 'utf8')).phases.vocab.results.mergedVocab);
  });

  it('a second run resumes: every phase is skipped', () => {
    const second = runRecipe();
    for (const ph of ['base', 'vocab', 'stage1', 'stage2', 'sft', 'merge']) {
      expect(second).toContain(`== ${ph}: done in an earlier run`);
    }
  }, 300_000);
});
