// Every failure of the `cllama-crawl` command is ONE line `cllama-crawl: <reason>` on stderr with exit code 2 (usage)
// or 1 (failure); help exits 0. Spawns the installed bin (bin/cllama-crawl.js → dist/cli.js), as a user runs it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliErrorChecks } from '../../core/test/helpers/run-bin.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-crawl-errors-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const { run, expectOneLine } = cliErrorChecks(path.join(PKG, 'bin/cllama-crawl.js'), REPO);

const folder = path.join(work, 'a-folder');
mkdirSync(folder);

describe('cllama-crawl errors', () => {
  it('help exits 0 with nothing on stderr', () => {
    expect(run('--help')).toMatchObject({ code: 0, stderr: '' });
    expect(run('dry-run', '--help')).toMatchObject({ code: 0, stderr: '' });
  });
  it('usage errors print one line and exit 2', () => {
    expectOneLine(['crawl', '--count', '3'], 2, /required option '--out/);
    expectOneLine(['crawl', '--out', 'o.jsonl', '--count', '0'], 2, /^cllama-crawl: --count must be a positive integer, got '0'$/);
    expectOneLine(['dry-run', '--bogus'], 2, /unknown option '--bogus'/);
    expectOneLine(['dry-run', '--lang', 'fr'], 2, /argument 'fr' is invalid/);
  });
  it('failures print one line naming the file and exit 1', () => {
    expectOneLine(['dry-run', '--topics', path.join(work, 'missing.txt')], 1, /cannot read topics file .*missing\.txt/);
    expectOneLine(['dry-run', '--topics', folder], 1, /a-folder/);
  });
});
