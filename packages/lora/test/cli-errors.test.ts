// Every failure of the `cllama-lora` command is ONE line `cllama-lora: <reason>` on stderr with exit code 2 (usage)
// or 1 (failure); help exits 0. Spawns the installed bin (bin/cllama-lora.js → dist/cli.js), as a user runs it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliErrorChecks } from '../../core/test/helpers/run-bin.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-lora-errors-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const { run, expectOneLine } = cliErrorChecks(path.join(PKG, 'bin/cllama-lora.js'), REPO);

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
    expectOneLine(
      ['merge', '--base', 'b', '--lora', 'l', '--out', 'o', '--save-dtype', 'int4'],
      2,
      /^cllama-lora: --save-dtype must be f32 or f16, got 'int4'$/,
    );
    expectOneLine(
      ['merge', '--base', 'b', '--lora', 'l', '--out', 'o', '--max-shard-size', '0'],
      2,
      /^cllama-lora: --max-shard-size must be a positive size such as 5GB, 500MB or 1000000, got '0'$/,
    );
  });
  it('failures print one line naming the file and exit 1', () => {
    const dirNamedLikeAFile = path.join(work, 'weights.safetensors');
    mkdirSync(dirNamedLikeAFile);
    expectOneLine(['tensors', dirNamedLikeAFile], 1, /weights\.safetensors: is a folder/);
    expectOneLine(['info', folder], 1, /a-folder: no adapter_config\.json/);
  });
});
