// Faults a user meets (issue 21), through the installed bin as a user runs it: a full disk under every
// command that writes (train, merge), a stdout that cannot be written, a FIFO given as an input, and the
// memory of reading inputs (bounded by a line or a read chunk, not the file).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { skipTmpfsTests, withTmpfs } from '../../core/test/helpers/disk-full.js';
import { expectOneLine, literal, runBin } from '../../core/test/helpers/run-bin.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const BIN = path.join(PKG, 'bin/cllama-tokenizer.js');
const MODEL = path.join(REPO, 'test-fixtures/tokenizers/merged_reference.model');
const LLAMA = path.join(REPO, 'test-fixtures/tokenizers/llama_tokenizer.model');
const ZH = path.join(REPO, 'test-fixtures/tokenizers/chinese_sp.model');
const CORPUS = path.join(REPO, 'test-fixtures/data/zh_train_2000.txt');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-tokenizer-faults-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (args: string[], opts: { stdout?: number } = {}) => runBin(BIN, args, { cwd: work, stdout: opts.stdout });

const ENOSPC = 'no space left on device \\(ENOSPC\\)';
const train = (out: string, ...more: string[]) =>
  run(['train', '--input', CORPUS, '--vocab-size', '3000', '--model-type', 'bpe', '--out', out, '--no-progress', ...more]);

describe('a full disk (tmpfs): exit 1, one line naming the file, nothing torn or temporary left', () => {
  it.skipIf(skipTmpfsTests)('train: neither <prefix>.model nor <prefix>.vocab, whichever of the two does not fit', async () => {
    const reference = train(path.join(work, 'ref'));
    expect(reference.code, reference.stderr).toBe(0);
    const modelPages = Math.ceil(statSync(path.join(work, 'ref.model')).size / 4096);
    // 64 KiB: the .model does not fit; one page more than the .model: the .model fits, the .vocab does not
    for (const [kib, failing] of [
      [64, 'zh.model'],
      [modelPages * 4 + 4, 'zh.vocab'],
    ] as const) {
      await withTmpfs(kib, (dir) => {
        const r = train(path.join(dir, 'zh'));
        expectOneLine(r, new RegExp(`^cllama-tokenizer: cannot write ${literal(path.join(dir, failing))}: ${ENOSPC}$`));
        expect(readdirSync(dir)).toEqual([]);
      });
    }
  });

  it.skipIf(skipTmpfsTests)('merge: the error names the file in the output folder', async () => {
    await withTmpfs(64, (dir) => {
      const out = path.join(dir, 'merged');
      const r = run(['merge', '--base', LLAMA, '--add', ZH, '--out', out, '--no-check']);
      expectOneLine(r, new RegExp(`^cllama-tokenizer: cannot write ${literal(out)}/[\\w.]+: ${ENOSPC}$`));
      expect(readdirSync(dir)).toEqual([]);
    });
  });
});

describe('a stdout that cannot be written (> /dev/full)', () => {
  it.skipIf(!existsSync('/dev/full'))('encode --file / --text and inspect end with one line, exit 1', () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [
        ['encode', '--model', MODEL, '--file', CORPUS],
        ['encode', '--model', MODEL, '--text', '你好', '--json'],
        ['inspect', MODEL],
      ]) {
        expectOneLine(run(args, { stdout: full }), /^cllama-tokenizer: cannot write to stdout: no space left on device \(ENOSPC\)$/);
      }
    } finally {
      closeSync(full);
    }
  });
});

describe('a FIFO given as an input is refused in one line, without hanging', () => {
  it('encode (model and file), inspect, merge, train, compare', () => {
    const fifo = path.join(work, 'tokenizer.model');
    spawnSync('mkfifo', [fifo]);
    const refused = new RegExp(`${literal(fifo)} is a FIFO \\(named pipe\\), not a regular file`);
    expectOneLine(run(['encode', '--model', fifo, '--text', 'x']), refused);
    expectOneLine(run(['encode', '--model', MODEL, '--file', fifo]), refused);
    expectOneLine(run(['inspect', fifo]), refused);
    expectOneLine(run(['merge', '--base', fifo, '--add', ZH, '--out', path.join(work, 'm')]), refused);
    expectOneLine(run(['merge', '--base', LLAMA, '--add', ZH, '--out', path.join(work, 'm'), '--sample-file', fifo]), refused);
    expectOneLine(run(['compare', '--model', MODEL, '--file', fifo]), refused);
    expectOneLine(train(path.join(work, 'never'), '--input', fifo), /is not a regular file/);
    expect(existsSync(path.join(work, 'm'))).toBe(false);
  });
});

describe('memory is bounded by a line or a read chunk, not the input', () => {
  it('train skips a 150 MB line without holding it; encode --file streams a 150 MB file', () => {
    const corpus = path.join(work, 'huge-line.txt');
    let fd = openSync(corpus, 'w');
    writeSync(fd, readFileSync(CORPUS));
    const block = '很长的一行'.repeat(70_000);
    for (let n = 0; n < 150e6; n += block.length * 3) writeSync(fd, block);
    writeSync(fd, '\n最后一行\n');
    closeSync(fd);
    const t = run(['train', '--input', corpus, '--vocab-size', '3000', '--model-type', 'bpe', '--out', path.join(work, 'big'), '--no-progress']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/from 2,001 sentences/);
    expect(t.peakKb).toBeLessThan(250 * 1024);

    // 150 MB of lines, nearly all skipped as invalid UTF-8 (cheap to encode): the reading alone is measured
    const file = path.join(work, 'many-lines.txt');
    fd = openSync(file, 'w');
    const bad = Buffer.alloc(1 << 20, 0xff);
    for (let i = 0; i < bad.length; i += 1000) bad[i] = 0x0a;
    for (let n = 0; n < 150; n++) writeSync(fd, bad);
    writeSync(fd, '\n你好\n');
    closeSync(fd);
    const e = run(['encode', '--model', MODEL, '--file', file]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout.trim().split('\n').pop()).not.toBe('');
    expect(e.lines.at(-1)).toMatch(/^warning: \d+ of \d+ lines of .* skipped \(not valid UTF-8\)/);
    expect(e.peakKb).toBeLessThan(200 * 1024);
  });
});
