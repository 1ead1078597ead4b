// Every failure of the `cllama-lora` command is ONE line `cllama-lora: <reason>` on stderr with exit code 2 (usage)
// or 1 (failure); help exits 0. Spawns the installed bin (bin/cllama-lora.js → dist/cli.js), as a user runs it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const BIN = path.join(PKG, 'bin/cllama-lora.js');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-lora-errors-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: REPO, env: { ...process.env, OPENAI_API_KEY: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLine(args: string[], code: number, pattern: RegExp) {
  const r = run(...args);
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^cllama-lora: \S/);
  expect(lines[0]).toMatch(pattern);
}

const folder = path.join(work, 'a-folder');
mkdirSync(folder);

describe('cllama-lora errors', () => {
  it('help exits 0 with nothing on stderr', () => {
    expect(run('--help')).toMatchObject({ code: 0, stderr: '' });
    expect(run('merge', '--help').stdout).toMatch(/--force/);
  });
  it('usage errors print one line and exit 2', () => {
    expectOneLine(['merge', '--base', 'b', '--lora', 'l'], 2, /required option '--out <dir>' not specified/);
    expectOneLine(['info'], 2, /missing required argument 'adapter-dir'/);
    expectOneLine(['tensors', 'x', '--bogus'], 2, /unknown option '--bogus'/);
    expectOneLine(['merge', '--base', 'b', '--lora', 'l', '--out', 'o', '--save-dtype', 'int4'], 2, /use f32 or f16/);
  });
  it('failures print one line naming the file and exit 1', () => {
    const dirNamedLikeAFile = path.join(work, 'weights.safetensors');
    mkdirSync(dirNamedLikeAFile);
    expectOneLine(['tensors', dirNamedLikeAFile], 1, /weights\.safetensors: is a folder/);
    expectOneLine(['info', folder], 1, /a-folder: no adapter_config\.json/);
  });
});
