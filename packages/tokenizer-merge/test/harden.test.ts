/**
 * Bad input (issue #14) through the built CLI: `train` never replaces <prefix>.model/.vocab without
 * --force (checked before training) nor an input; `merge` never writes over the folder it reads; `encode`
 * warns about lines that are not UTF-8 (line, byte offset, count) like cllama-data, instead of dropping
 * their bytes silently.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const PKG = path.resolve(__dirname, '..');
const CLI = path.join(PKG, 'dist/cli.js');
const FIX = path.resolve(PKG, '../../test-fixtures');
const LLAMA = path.join(FIX, 'tokenizers/llama_tokenizer.model');
const ZH = path.join(FIX, 'tokenizers/chinese_sp.model');
const CORPUS = path.join(FIX, 'data/zh_train_2000.txt');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'tok-harden-'));

describe('cllama-tokenizer: no clobbering', () => {
  it('train refuses existing <prefix>.model / .vocab before training, replaces them with --force', () => {
    const d = tmp();
    const prefix = path.join(d, 'zh');
    writeFileSync(`${prefix}.vocab`, 'mine\n');
    const t0 = Date.now();
    const r = cli('train', '--input', CORPUS, '--vocab-size', '3000', '--model-type', 'bpe', '--out', prefix, '--no-progress');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cllama-tokenizer: ${prefix}.vocab exists; pass --force to replace it, or choose another --out prefix\n`);
    expect(Date.now() - t0).toBeLessThan(5000); // refused before reading the corpus
    expect(readdirSync(d)).toEqual(['zh.vocab']);
    expect(readFileSync(`${prefix}.vocab`, 'utf8')).toBe('mine\n');
    const f = cli('train', '--input', CORPUS, '--vocab-size', '3000', '--model-type', 'bpe', '--out', prefix, '--no-progress', '--force');
    expect(f.code, f.stderr).toBe(0);
    expect(readFileSync(`${prefix}.vocab`, 'utf8').split('\n').length).toBeGreaterThan(3000);
  });

  it('train refuses an --out prefix whose .model is an --input, even with --force', () => {
    const d = tmp();
    const input = path.join(d, 'text.model');
    writeFileSync(input, '你好\n');
    const r = cli('train', '--input', input, '--vocab-size', '300', '--out', path.join(d, 'text'), '--force', '--no-progress');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/would overwrite the input .*text\.model/);
    expect(readFileSync(input, 'utf8')).toBe('你好\n');
  });

  it('merge refuses an --out that is the folder of its --base, even with --force', () => {
    const d = tmp();
    const hf = path.join(d, 'hf');
    mkdirSync(hf);
    cpSync(LLAMA, path.join(hf, 'tokenizer.model'));
    for (const base of [hf, path.join(hf, 'tokenizer.model')]) {
      const r = cli('merge', '--base', base, '--add', ZH, '--out', hf, '--force', '--no-check');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^cllama-tokenizer: --out .*hf holds the input .*; write the merged tokenizer to another folder\n$/);
    }
    expect(readdirSync(hf)).toEqual(['tokenizer.model']);
    expect(readFileSync(path.join(hf, 'tokenizer.model')).equals(readFileSync(LLAMA))).toBe(true);
  });
});

describe('cllama-tokenizer train: numbers', () => {
  it('refuses --vocab-size 1e99 / 1e3 / empty before reading anything: a usage error (exit 2), worded as on every CLI', () => {
    for (const bad of ['1e99', '1e3', '']) {
      const r = cli('train', '--input', CORPUS, '--vocab-size', bad, '--out', path.join(tmp(), 'x'), '--no-progress');
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`cllama-tokenizer: --vocab-size must be an integer, got '${bad}'\n`);
    }
  });
});

describe('cllama-tokenizer encode: invalid UTF-8', () => {
  it('skips lines that are not UTF-8 with a warning naming the line and first bad byte, and counts them', () => {
    const d = tmp();
    const file = path.join(d, 'mixed.txt');
    const good = Buffer.from('黄河入海流\n');
    writeFileSync(file, Buffer.concat([good, Buffer.from([0x61, 0x62, 0xff, 0x63, 0x0a]), Buffer.from('白日依山尽\n'), Buffer.from([0xe4, 0xb8, 0x0a])]));
    const r = cli('encode', '--model', LLAMA, '--file', file, '--json');
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((x) => x.text)).toEqual(['黄河入海流', '白日依山尽']);
    expect(r.stderr.trim().split('\n')).toEqual([
      `warning: ${file} line 2: not valid UTF-8 (bad byte 0xff at byte 2 of the line); the line was skipped`,
      `warning: ${file} line 4: not valid UTF-8 (bad byte 0xe4 at byte 0 of the line); the line was skipped`,
      `warning: 2 of 4 lines of ${file} skipped (not valid UTF-8); re-encode the file as UTF-8`,
    ]);
    expect(existsSync(path.join(d, 'mixed.txt'))).toBe(true);
  });
});
