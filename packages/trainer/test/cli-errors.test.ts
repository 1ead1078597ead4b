// Every failure of the `cllama-train` command is ONE line `cllama-train: <reason>` on stderr with exit code 2 (usage)
// or 1 (failure); help exits 0. Spawns the installed bin (bin/cllama-train.js → dist/cli.js), as a user runs it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliErrorChecks } from '../../core/test/helpers/run-bin.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-train-errors-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const { run, expectOneLine } = cliErrorChecks(path.join(PKG, 'bin/cllama-train.js'), REPO);

const folder = path.join(work, 'a-folder');
mkdirSync(folder);

const MODEL = path.join(REPO, 'test-fixtures/tiny-llama');

describe('cllama-train errors', () => {
  it('help exits 0 with nothing on stderr', () => {
    expect(run('--help')).toMatchObject({ code: 0, stderr: '' });
    expect(run('sft', '--help')).toMatchObject({ code: 0, stderr: '' });
  });
  it('usage errors print one line and exit 2, with no tfjs banner before them', () => {
    expectOneLine(['score', '--backend', 'cpu'], 2, /required option '--model <dir>' not specified/);
    expectOneLine(['score', '--model', MODEL, '--backend', 'cpu', '--bogus'], 2, /unknown option '--bogus'/);
    expectOneLine(
      ['score', '--model', MODEL, '--backend', 'cpu', '--input-ids', path.join(REPO, 'package.json')],
      2,
      /--input-ids .*package\.json must hold a JSON array/,
    );
    expectOneLine(['score', '--model', MODEL, '--backend', 'cpu', '--input-ids', path.join(work, 'missing.json')], 2, /missing\.json/);
    expectOneLine(['score', '--model', MODEL, '--backend', 'nope'], 2, /argument 'nope' is invalid/);
    expectOneLine(
      ['generate', '--model', MODEL, '--backend', 'cpu', '--prompt', 'hi', '--max-new-tokens', 'abc'],
      2,
      /--max-new-tokens must be a positive integer/,
    );
    expectOneLine(
      ['pretrain', '--model-name-or-path', MODEL, '--dataset-dir', 'd', '--output-dir', path.join(work, 'o'), '--lr-scheduler-type', 'sideways'],
      2,
      /'sideways' is not one of/,
    );
    expectOneLine(['sft', '--bogus-flag', '1'], 2, /unknown option '--bogus-flag'/);
  });
  it('failures print one line naming the file and exit 1', () => {
    expectOneLine(
      ['score', '--model', path.join(work, 'no-model'), '--backend', 'cpu', '--input-ids', path.join(REPO, 'test-fixtures/tiny-llama/config.json')],
      2,
      /config\.json must hold/,
    );
    expectOneLine(['generate', '--model', folder, '--backend', 'cpu', '--prompt', 'hi'], 2, /a-folder/);
  });
});
