import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const PKG = path.resolve(__dirname, '..');
const CLI = path.join(PKG, 'dist/cli.js');
const FIX = path.resolve(PKG, '../../test-fixtures');
const LLAMA = path.join(FIX, 'tokenizers/llama_tokenizer.model');
const ZH = path.join(FIX, 'tokenizers/chinese_sp.model');
const MERGED = path.join(FIX, 'tokenizers/merged_reference.model');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tmp: string;
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the package build (npx nx run-many -t build) first`);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'tok-cli-'));
});

/** A failed command: non-zero exit, exactly one line on stderr, and `out` not created. */
function expectCleanFailure(r: ReturnType<typeof cli>, pattern: RegExp, out?: string) {
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines.length).toBe(1);
  expect(lines[0]).toMatch(pattern);
  if (out) {
    expect(existsSync(out)).toBe(false);
    // no temp folders left beside it
    expect(readdirSync(path.dirname(out)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  }
}

describe('cllama-tokenizer CLI', () => {
  it('--help lists the commands', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const c of ['merge', 'encode', 'inspect', 'compare']) expect(r.stdout).toContain(c);
    expect(cli('merge', '--help').stdout).toContain('--distinct-scores');
  });

  it('merge reports 49,953 (+ pad 49,954), warns about disagreement, writes the reference bytes', () => {
    const out = path.join(tmp, 'zh');
    const r = cli('merge', '--base', LLAMA, '--add', ZH, '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('49,953 pieces (+ pad [PAD]: 49,954)');
    expect(r.stdout).toMatch(/321 of 17,953 added pieces can never be produced/);
    expect(r.stdout).toMatch(/WARNING: tokenizer.json and SentencePiece disagree on [\d,]+ of 1,467 sample lines/);
    expect(readFileSync(path.join(out, 'tokenizer.model')).equals(readFileSync(MERGED))).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['special_tokens_map.json', 'tokenizer.json', 'tokenizer.model', 'tokenizer_config.json']);

    // the HF folder works as --base and --model
    const inspect = cli('inspect', out);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toMatch(/pieces:\s+49,953/);
    expect(inspect.stdout).toMatch(/vocab size:\s+49,954/);
    expect(inspect.stdout).toMatch(/type:\s+BPE/);
    expect(inspect.stdout).toContain('[PAD] (49953)');

    // an HF folder as --base: nothing new to add from the same Chinese model
    const again = cli('merge', '--base', out, '--add', ZH, '--out', path.join(tmp, 'zh-again'), '--no-check');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('20,000 pieces, 0 new');
    expect(again.stdout).toContain('49,953 pieces (+ pad [PAD]: 49,954)');
  });

  it('merge --distinct-scores --no-pad --json: agreement on the whole sample, no pad', () => {
    const out = path.join(tmp, 'zh-distinct');
    const r = cli('merge', '--base', LLAMA, '--add', ZH, '--out', out, '--distinct-scores', '--no-pad', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.mergedPieces).toBe(49953);
    expect(report.vocabSize).toBe(49953);
    expect(report.padToken).toBeNull();
    expect(report.agreement.disagreements).toBe(0);
    expect(report.agreement.lines).toBe(1467);
    const config = JSON.parse(readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8'));
    expect(config.pad_token).toBeUndefined();
  });

  it('merge --pad-token and --sample-file', () => {
    const sample = path.join(tmp, 'sample.txt');
    writeFileSync(sample, '黄河入海流\n越来越好\n');
    const out = path.join(tmp, 'zh-pad');
    const r = cli('merge', '--base', LLAMA, '--add', ZH, '--out', out, '--pad-token', '<pad>', '--sample-file', sample);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(+ pad <pad>: 49,954)');
    expect(r.stdout).toMatch(/ 2 sample lines/);
    expect(JSON.parse(readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).pad_token).toBe('<pad>');
  });

  it('refuses a non-empty output folder unless --force, then replaces it', () => {
    const out = path.join(tmp, 'busy');
    mkdirSync(out);
    writeFileSync(path.join(out, 'keep.txt'), 'mine');
    const r = cli('merge', '--base', LLAMA, '--add', ZH, '--out', out, '--no-check');
    expectCleanFailure(r, /busy exists and is not empty.*--force/);
    expect(readdirSync(out)).toEqual(['keep.txt']);
    const forced = cli('merge', '--base', LLAMA, '--add', ZH, '--out', out, '--no-check', '--force');
    expect(forced.code).toBe(0);
    expect(readdirSync(out)).not.toContain('keep.txt');
    expect(readdirSync(out)).toContain('tokenizer.json');
  });

  it('bad inputs: one-line errors, non-zero exit, nothing written', () => {
    const notModel = path.join(tmp, 'not-a-model.model');
    writeFileSync(notModel, '{"this": "is json"}\n');
    const truncated = path.join(tmp, 'truncated.model');
    writeFileSync(truncated, readFileSync(LLAMA).subarray(0, 100_000));
    const empty = path.join(tmp, 'empty.model');
    writeFileSync(empty, '');
    const out = path.join(tmp, 'never');
    expectCleanFailure(cli('merge', '--base', notModel, '--add', ZH, '--out', out), /not-a-model.model is not a SentencePiece model/, out);
    expectCleanFailure(cli('merge', '--base', LLAMA, '--add', truncated, '--out', out), /truncated.model is not a SentencePiece model.*truncated/, out);
    expectCleanFailure(cli('merge', '--base', LLAMA, '--add', empty, '--out', out), /empty.model is empty/, out);
    expectCleanFailure(cli('merge', '--base', LLAMA, '--add', '', '--out', out), /--add/, out);
    expectCleanFailure(cli('merge', '--base', LLAMA, '--out', out), /--add/, out);
    expectCleanFailure(cli('merge', '--base', LLAMA, '--add', path.join(tmp, 'missing.model'), '--out', out), /does not exist/, out);
    expectCleanFailure(cli('merge', '--base', ZH, '--add', LLAMA, '--out', out), /needs a BPE model/, out);
    expectCleanFailure(cli('encode', '--model', notModel, '--text', 'x'), /not a SentencePiece model/);
    expectCleanFailure(cli('encode', '--model', LLAMA), /exactly one of --text/);
    expectCleanFailure(cli('inspect', truncated), /not a SentencePiece model/);
    expectCleanFailure(cli('nonsense'), /unknown command/);
  });

  it('encode prints ids, pieces and JSON lines (--jsonl; --json is its old name)', () => {
    const ids = cli('encode', '--model', MERGED, '--text', '黄河入海流', '--bos');
    expect(ids.code).toBe(0);
    expect(ids.stdout.trim().split(' ')[0]).toBe('1');
    const pieces = cli('encode', '--model', MERGED, '--text', '黄河入海流', '--pieces');
    expect(pieces.stdout.trim().split(' ').join('')).toBe('▁黄河入海流');
    const file = path.join(tmp, 'two-lines.txt');
    writeFileSync(file, 'hello world\n你好\n');
    const json = cli('encode', '--model', LLAMA, '--file', file, '--jsonl', '--pieces');
    expect(cli('encode', '--model', LLAMA, '--file', file, '--json', '--pieces').stdout).toBe(json.stdout);
    expect(cli('encode', '--help').stdout).not.toMatch(/--json\b(?!l)/);
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.text)).toEqual(['hello world', '你好']);
    expect(rows[0].pieces).toEqual(['▁hello', '▁world']);
    expect(rows[0].ids.length).toBe(2);
  });

  it('compare: the merged model needs ≥ 2× fewer tokens per character on held-out Chinese', () => {
    const r = cli('compare', '--model', LLAMA, '--model', MERGED, '--file', path.join(FIX, 'data/zh_heldout_3000.txt'), '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.lines).toBe(3000);
    const [llama, merged] = report.models;
    expect(llama.tokensPerChar).toBeGreaterThan(1.3);
    expect(merged.tokensPerChar).toBeLessThan(0.8);
    expect(report.ratioToFirst[1]).toBeGreaterThanOrEqual(2.0);
    const text = cli('compare', '--model', LLAMA, '--model', MERGED, '--file', path.join(FIX, 'data/zh_heldout_3000.txt'));
    expect(text.stdout).toMatch(/fewer tokens than the first/);
  });
});
