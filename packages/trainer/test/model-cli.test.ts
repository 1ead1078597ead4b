/** The built cllama-train bin: score, generate, chat on real fixture models and a real SentencePiece tokenizer. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadTokenizer } from '@cllama/tokenizer-merge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { alpacaPrompt, generate } from '../src/generate.js';
import { loadLlama, saveLlama } from '../src/model/io.js';
import { FIXTURES, relErr, TINY_LLAMA } from './helpers.js';

const run = promisify(execFile);
const CLI = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
const TOKENIZER = path.join(FIXTURES, 'tokenizers/llama_tokenizer.model');
const golden = JSON.parse(readFileSync(path.join(TINY_LLAMA, 'golden.json'), 'utf8'));

async function cli(args: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  const child = run('node', [CLI, ...args], { maxBuffer: 1 << 24 });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('cllama-train CLI', () => {
  let tmp: string;
  let bigVocabModel: string;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'cllama-cli-'));
    writeFileSync(path.join(tmp, 'ids.json'), JSON.stringify(golden.input_ids));
    writeFileSync(path.join(tmp, 'labels.json'), JSON.stringify(golden.labels));
    // tiny-llama grown to LLaMA's 32,000-token vocabulary so the real tokenizer fits it.
    await initBackend('wasm');
    const model = await loadLlama(TINY_LLAMA);
    model.resizeTokenEmbeddings(32000, 0);
    bigVocabModel = path.join(tmp, 'model-32k');
    await saveLlama(bigVocabModel, model, { dtype: 'F16' });
    model.dispose();
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('score --input-ids --labels --json gives the PyTorch loss and logits sums', async () => {
    const r = await cli([
      'score',
      '--model',
      TINY_LLAMA,
      '--input-ids',
      path.join(tmp, 'ids.json'),
      '--labels',
      path.join(tmp, 'labels.json'),
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Math.abs(out.loss - golden.loss)).toBeLessThan(1e-5);
    expect(out.perplexity).toBeCloseTo(Math.exp(golden.loss), 2);
    expect(out.tokens).toBe(42); // 2 × 23 shifted targets, minus 4 ignored
    expect(relErr(out.logits_sum, golden.logits_sum)).toBeLessThan(1e-4);
    expect(relErr(out.logits_abs_sum, golden.logits_abs_sum)).toBeLessThan(1e-4);
    expect(out.backend).toBe('wasm');
  });

  it('score --lora applies the PEFT adapter', async () => {
    const r = await cli(['score', '--model', TINY_LLAMA, '--lora', path.join(TINY_LLAMA, 'lora'), '--input-ids', path.join(tmp, 'ids.json'), '--json']);
    expect(r.code).toBe(0);
    expect(relErr(JSON.parse(r.stdout).logits_abs_sum, golden.lora.logits_abs_sum)).toBeLessThan(1e-4);
  });

  it('score --text-file tokenizes lines with BOS and reports loss over all predicted tokens', async () => {
    const text = 'The primary use of LLaMA is research.\n\nLarge language models are fun.\n';
    writeFileSync(path.join(tmp, 'text.txt'), text);
    const r = await cli([
      'score',
      '--model',
      bigVocabModel,
      '--tokenizer',
      TOKENIZER,
      '--text-file',
      path.join(tmp, 'text.txt'),
      '--block-size',
      '8',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const tok = await loadTokenizer(TOKENIZER);
    const total =
      tok.encode('The primary use of LLaMA is research.', { addBos: true }).length + tok.encode('Large language models are fun.', { addBos: true }).length;
    const blocks = Math.ceil(total / 8);
    expect(out.tokens).toBe(total - blocks); // one target fewer than tokens per block
    expect(out.loss).toBeGreaterThan(0);
    expect(out.perplexity).toBeCloseTo(Math.exp(out.loss), 6);
  });

  it('generate --greedy prints what the library generates; chat answers each line with the Alpaca template', async () => {
    const r = await cli(['generate', '--model', bigVocabModel, '--tokenizer', TOKENIZER, '--prompt', 'Hello', '--greedy', '--max-new-tokens', '6']);
    expect(r.code).toBe(0);
    const tok = await loadTokenizer(TOKENIZER);
    const model = await loadLlama(bigVocabModel);
    const ids = await generate(model, tok.encode('Hello', { addBos: true }), { maxNewTokens: 6, eosTokenId: tok.eosId });
    const expected = tok.decode(ids.filter((i) => i !== tok.eosId));
    expect(r.stdout).toBe(`${expected}\n`);

    const chat = await cli(['chat', '--model', bigVocabModel, '--tokenizer', TOKENIZER, '--greedy', '--max-new-tokens', '4'], 'Name a color.\n\nSay hi.\n');
    expect(chat.code).toBe(0);
    const answers = chat.stdout.split('\n').slice(0, 2);
    const first = await generate(model, tok.encode(alpacaPrompt('Name a color.'), { addBos: true }), { maxNewTokens: 4, eosTokenId: tok.eosId });
    expect(answers[0]).toBe(tok.decode(first.filter((i) => i !== tok.eosId)));
    expect(chat.stdout.split('\n')).toHaveLength(3); // two answers + final newline

    // a line longer than max_position_embeddings (256) is refused in one line; the next one is answered
    const long = 'word '.repeat(300).trim();
    const mixed = await cli(['chat', '--model', bigVocabModel, '--tokenizer', TOKENIZER, '--greedy', '--max-new-tokens', '4'], `${long}\nName a color.\n`);
    expect(mixed.code).toBe(1);
    const refusals = mixed.stderr.split('\n').filter((l) => l.startsWith('cllama-train: the prompt is'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/tokens but the model reads at most 256 \(max_position_embeddings\)/);
    expect(mixed.stdout).toBe(`${answers[0]}\n`);
    model.dispose();
  });

  it('score --backend webgpu --json gives the same PyTorch numbers and says which adapter it used', async () => {
    const r = await cli([
      'score',
      '--model',
      TINY_LLAMA,
      '--input-ids',
      path.join(tmp, 'ids.json'),
      '--labels',
      path.join(tmp, 'labels.json'),
      '--json',
      '--backend',
      'webgpu',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.backend).toBe('webgpu');
    expect(Math.abs(out.loss - golden.loss)).toBeLessThan(1e-5);
    expect(out.tokens).toBe(42);
    expect(relErr(out.logits_sum, golden.logits_sum)).toBeLessThan(1e-4);
    expect(relErr(out.logits_abs_sum, golden.logits_abs_sum)).toBeLessThan(1e-4);
    // (lavapipe's Vulkan driver adds two 'Warning: …' lines of its own)
    expect(r.stderr).toMatch(/^cllama-train: backend webgpu \(@tensorflow\/tfjs-backend-webgpu, adapter .+\): asked for by name/m);
  });

  it('bad input: one clear line and a non-zero exit', async () => {
    const missing = await cli(['score', '--model', path.join(tmp, 'nope'), '--input-ids', path.join(tmp, 'ids.json')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^cllama-train: /);
    const both = await cli(['score', '--model', TINY_LLAMA]);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/exactly one of --text-file or --input-ids/);
    const backend = await cli(['score', '--model', TINY_LLAMA, '--input-ids', path.join(tmp, 'ids.json'), '--backend', 'tensorflow']);
    expect(backend.code).not.toBe(0);
    expect(backend.stderr).toMatch(/install one of them/);
  });

  it('--backend webgpu without the webgpu package: exit 1 and one line saying what to install', async () => {
    // a module hook that makes 'webgpu' unresolvable, as on an install without the optional peer
    const hooks = `export async function resolve(s, c, next) { if (s === 'webgpu') { const e = new Error("Cannot find package 'webgpu'"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e; } return next(s, c); }`;
    const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
    const child = run('node', [
      '--import',
      `data:text/javascript,${encodeURIComponent(register)}`,
      CLI,
      'score',
      '--model',
      TINY_LLAMA,
      '--input-ids',
      path.join(tmp, 'ids.json'),
      '--backend',
      'webgpu',
    ]);
    const err = (await child.then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    ))!;
    expect(err.code).toBe(1);
    expect(err.stderr.trim().split('\n')).toEqual([
      "cllama-train: backend 'webgpu': the webgpu backend is not installed: install webgpu and @tensorflow/tfjs-backend-webgpu (npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0)",
    ]);
  });

  it('--backend webgpu without a Vulkan driver: exit 1 and a line saying what to install', async () => {
    const child = run('node', [CLI, 'score', '--model', TINY_LLAMA, '--input-ids', path.join(tmp, 'ids.json'), '--backend', 'webgpu'], {
      env: { ...process.env, VK_ICD_FILENAMES: path.join(tmp, 'no-such-icd.json') },
    });
    const err = (await child.then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    ))!;
    expect(err.code).toBe(1);
    // (the Vulkan loader prints its own 'Warning: …' lines first)
    expect(err.stderr.trim().split('\n').at(-1)).toMatch(
      /^cllama-train: backend 'webgpu': Dawn found no WebGPU adapter .*install a Vulkan driver: .*mesa-vulkan-drivers libvulkan1/,
    );
  });
});
