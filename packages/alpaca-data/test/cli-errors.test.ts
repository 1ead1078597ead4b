// Every failure of the `cllama-data` command is ONE line `cllama-data: <reason>` on stderr with exit code 2 (usage)
// or 1 (failure); help exits 0. Spawns the installed bin (bin/cllama-data.js → dist/cli.js), as a user runs it.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliErrorChecks } from '../../core/test/helpers/run-bin.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-data-errors-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const { run, expectOneLine } = cliErrorChecks(path.join(PKG, 'bin/cllama-data.js'), REPO);

const folder = path.join(work, 'a-folder');
mkdirSync(folder);

const ALPACA = path.join(REPO, 'test-fixtures/data/alpaca_zh_demo.json');

describe('cllama-data errors', () => {
  it('help exits 0 with nothing on stderr', () => {
    expect(run('--help')).toMatchObject({ code: 0, stderr: '' });
    expect(run()).toMatchObject({ code: 0, stderr: '' });
  });
  it('usage errors print one line and exit 2', () => {
    expectOneLine(['convert', ALPACA, '--from', 'nope', '--out', 'o.jsonl'], 2, /argument 'nope' is invalid/);
    expectOneLine(['convert', ALPACA, '--out', 'o.jsonl'], 2, /required option '--from <format>' not specified/);
    expectOneLine(['mix', '--source', 'a=x:1', '--out', 'o.jsonl'], 2, /required option '--seed <n>' not specified/);
    expectOneLine(['convert', ALPACA, '--from', 'alpaca', '--out', 'o.jsonl', '--seed', 'x'], 2, /--seed must be an integer/);
    expectOneLine(['stats'], 2, /missing required argument 'path'/);
  });
  it('failures print one line naming the file and exit 1', () => {
    expectOneLine(['convert', folder, '--from', 'alpaca', '--out', path.join(work, 'o.jsonl')], 1, /a-folder is a folder/);
    expectOneLine(['convert', ALPACA, '--from', 'alpaca', '--out', folder], 1, /a-folder is a folder; give a file path/);
    expectOneLine(['stats', path.join(work, 'missing.json')], 2, /missing\.json not found/);
  });
});
