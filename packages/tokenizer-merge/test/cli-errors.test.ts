// Every failure of the `cllama-tokenizer` command is ONE line `cllama-tokenizer: <reason>` on stderr with exit code 2 (usage)
// or 1 (failure); help exits 0. Spawns the installed bin (bin/cllama-tokenizer.js → dist/cli.js), as a user runs it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliErrorChecks } from '../../core/test/helpers/run-bin.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-tokenizer-errors-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const { run, expectOneLine } = cliErrorChecks(path.join(PKG, 'bin/cllama-tokenizer.js'), REPO);

const folder = path.join(work, 'a-folder');
mkdirSync(folder);

describe('cllama-tokenizer errors', () => {
  it('help exits 0 with nothing on stderr', () => {
    expect(run('--help')).toMatchObject({ code: 0, stderr: '' });
    expect(run('train', '--help')).toMatchObject({ code: 0, stderr: '' });
  });
  it('usage errors print one line and exit 2', () => {
    expectOneLine(['merge', '--base', 'x.model', '--add', 'y.model'], 2, /required option '--out <dir>' not specified/);
    expectOneLine(['merge', '--add', 'y.model', '--out', 'o'], 2, /required option '--base/);
    expectOneLine(['train', '--input', 'x.txt', '--out', 'o'], 2, /required option '--vocab-size/);
    expectOneLine(['inspect'], 2, /missing required argument 'model'/);
    expectOneLine(['inspect', 'x.model', '--bogus'], 2, /unknown option '--bogus'/);
    expectOneLine(['frobnicate'], 2, /unknown command 'frobnicate'/);
  });
  it('failures print one line naming the file and exit 1', () => {
    expectOneLine(['inspect', path.join(work, 'missing.model')], 1, /missing\.model/);
    expectOneLine(['inspect', folder], 1, /a-folder/);
    expectOneLine(['train', '--input', folder, '--vocab-size', '100', '--out', path.join(work, 'sp')], 1, /a-folder is not a regular file/);
  });
});
