// Faults a user meets (issue 21): a full disk under every command that writes, a stdout that cannot be
// written, a FIFO given as an input, and one huge field in an input file. Each spawns the installed bin
// (bin/cllama-data.js → dist/cli.js), as a user runs it, and checks the exit code, that stderr is ONE
// line naming the file, that nothing torn or temporary is left, and (huge field) the peak memory.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { skipTmpfsTests, withTmpfs } from '../../core/test/helpers/disk-full.js';
import { expectOneLine, literal, runBin } from '../../core/test/helpers/run-bin.js';
import { readJsonRecords, readTextLines } from '../src/readers.js';
import type { RecordError } from '../src/errors.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(PKG, '../..');
const BIN = path.join(PKG, 'bin/cllama-data.js');
const DATA = path.join(REPO, 'test-fixtures/data');
const ALPACA = path.join(DATA, 'alpaca_zh_demo.json');
const MODEL = path.join(REPO, 'test-fixtures/tokenizers/merged_reference.model');
const work = mkdtempSync(path.join(tmpdir(), 'cllama-data-faults-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (args: string[], opts: { stdout?: number } = {}) => runBin(BIN, args, { cwd: work, stdout: opts.stdout, timeoutMs: 60_000 });

const ENOSPC = 'no space left on device \\(ENOSPC\\)';

describe('a full disk (64 KiB tmpfs): exit 1, one line naming the output, nothing torn or temporary left', () => {
  it.skipIf(skipTmpfsTests)('convert (new output, and replacing an old one with --force)', async () => {
    await withTmpfs(64, (dir) => {
      const out = path.join(dir, 'out.jsonl');
      expectOneLine(run(['convert', ALPACA, '--from', 'alpaca', '--out', out]), new RegExp(`^cllama-data: cannot write ${literal(out)}: ${ENOSPC}$`));
      expect(readdirSync(dir)).toEqual([]);
      writeFileSync(out, 'old\n');
      expectOneLine(
        run(['convert', ALPACA, '--from', 'alpaca', '--out', out, '--force']),
        new RegExp(`^cllama-data: cannot write ${literal(out)}: ${ENOSPC}$`),
      );
      expect(readdirSync(dir)).toEqual(['out.jsonl']);
      expect(readFileSync(out, 'utf8')).toBe('old\n');
    });
  });

  it.skipIf(skipTmpfsTests)('mix, streamed (--no-shuffle) and shuffled with a --report', async () => {
    await withTmpfs(64, (dir) => {
      const out = path.join(dir, 'mix.jsonl');
      expectOneLine(
        run(['mix', '--source', `zh=${ALPACA}:900`, '--seed', '1', '--out', out, '--no-shuffle', '--quiet']),
        new RegExp(`^cllama-data: cannot write ${literal(out)}: ${ENOSPC}$`),
      );
      expect(readdirSync(dir)).toEqual([]);
      const report = path.join(dir, 'report.md');
      expectOneLine(
        run(['mix', '--source', `zh=${ALPACA}:900`, '--seed', '1', '--out', out, '--report', report, '--quiet']),
        new RegExp(`^cllama-data: cannot write ${literal(out)}: ${ENOSPC}$`),
      );
      expect(readdirSync(dir)).toEqual([]);
    });
  });

  it.skipIf(skipTmpfsTests)('tokenize, sft and pt (the error names the file in the output folder)', async () => {
    await withTmpfs(64, (dir) => {
      const out = path.join(dir, 'ds');
      for (const args of [
        ['--kind', 'sft', '--input', ALPACA],
        ['--kind', 'pt', '--input', path.join(DATA, 'zh_train_2000.txt')],
      ]) {
        const r = run(['tokenize', ...args, '--tokenizer', MODEL, '--out', out, '--quiet']);
        expectOneLine(r, new RegExp(`^cllama-data: cannot write ${literal(out)}/(tokens|offsets|labels)\\.bin: ${ENOSPC}$`));
        expect(readdirSync(dir)).toEqual([]);
      }
    });
  });
});

describe('a stdout that cannot be written (> /dev/full): exit 1, one line', () => {
  const dataset = path.join(work, 'ds-sft');
  it.skipIf(!existsSync('/dev/full'))('dump --jsonl, stats (file and dataset), mix printing its report', () => {
    expect(run(['tokenize', '--kind', 'sft', '--input', ALPACA, '--tokenizer', MODEL, '--out', dataset, '--quiet']).code).toBe(0);
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [
        ['dump', '--jsonl', dataset],
        ['stats', ALPACA],
        ['stats', dataset],
        ['dump', dataset],
      ]) {
        expectOneLine(run(args, { stdout: full }), /^cllama-data: cannot write to stdout: no space left on device \(ENOSPC\)$/);
      }
      const mixed = path.join(work, 'mixed.jsonl');
      expectOneLine(
        run(['mix', '--source', `zh=${ALPACA}:10`, '--seed', '1', '--out', mixed, '--quiet'], { stdout: full }),
        /^cllama-data: cannot write to stdout: no space left on device \(ENOSPC\)$/,
      );
      // the mixture itself was complete before the report was printed
      expect(readFileSync(mixed, 'utf8').split('\n').filter(Boolean)).toHaveLength(10);
      expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]);
    } finally {
      closeSync(full);
    }
  });
});

describe('a FIFO given as an input is refused in one line, without hanging', () => {
  it('convert, mix, stats, tokenize (inputs and tokenizer), dump', () => {
    const fifo = path.join(work, 'in.json');
    spawnSync('mkfifo', [fifo]);
    const refused = new RegExp(`${literal(fifo)} is a FIFO \\(named pipe\\), not a regular file`);
    expectOneLine(run(['convert', fifo, '--from', 'alpaca', '--out', path.join(work, 'c.jsonl')]), refused);
    expectOneLine(run(['mix', '--source', `a=${fifo}:1`, '--seed', '1', '--out', path.join(work, 'm.jsonl')]), refused);
    expectOneLine(run(['stats', fifo]), refused);
    expectOneLine(run(['tokenize', '--kind', 'sft', '--input', fifo, '--tokenizer', MODEL, '--out', path.join(work, 't')]), refused);
    expectOneLine(run(['tokenize', '--kind', 'sft', '--input', ALPACA, '--tokenizer', fifo, '--out', path.join(work, 't')]), refused);
    const ds = path.join(work, 'fifo-ds');
    mkdirSync(ds);
    spawnSync('mkfifo', [path.join(ds, 'meta.json')]);
    expectOneLine(run(['dump', ds]), /meta\.json is a FIFO/);
    expect(existsSync(path.join(work, 't'))).toBe(false);
  });
});

describe('one huge field: memory bounded by the work kept, not the input', () => {
  // 100 MB in one output field, between two ordinary records, written in pieces (never one string here)
  const huge = path.join(work, 'huge.json');
  const hugeLines = path.join(work, 'huge.jsonl');
  const hugeText = path.join(work, 'huge.txt');
  const fill = (fd: number, piece: string, bytes: number) => {
    const block = piece.repeat(Math.ceil((1 << 20) / piece.length));
    for (let n = 0; n < bytes; n += block.length) writeSync(fd, block);
  };
  const record = (i: number) => JSON.stringify({ instruction: `指令 ${i}`, input: '', output: `回答 ${i}` });
  {
    let fd = openSync(huge, 'w');
    writeSync(fd, `[${record(1)},\n{"instruction": "大", "input": "", "output": "`);
    fill(fd, '很长的 \\" 文本 \\\\ ', 100e6);
    writeSync(fd, `"},\n${record(3)}]\n`);
    closeSync(fd);
    fd = openSync(hugeLines, 'w');
    writeSync(fd, `${record(1)}\n{"instruction": "大", "input": "", "output": "`);
    fill(fd, 'long text ', 100e6);
    writeSync(fd, `"}\n${record(3)}\n`);
    closeSync(fd);
    fd = openSync(hugeText, 'w');
    writeSync(fd, '第一行文本\n');
    fill(fd, '很长的一行 ', 100e6);
    writeSync(fd, '\n最后一行文本\n');
    closeSync(fd);
  }
  const LIMIT_KB = 300 * 1024; // a node process with a tokenizer loaded is ~100-150 MB; the whole field would be gigabytes

  it('stats, convert, mix and tokenize skip the record with a warning, keep the others, and stay under 300 MB', () => {
    for (const file of [huge, hugeLines]) {
      const where = file === huge ? 'record 2 \\(line 2\\)' : 'line 2';
      const warning = new RegExp(`${literal(file)} ${where}: \\d+ bytes, over the 8 MiB per-record limit \\(--max-record-bytes\\); skipped without reading it`);
      const stats = run(['stats', file, '--json']);
      expect(stats.code, stats.stderr).toBe(0);
      expect(stats.peakKb).toBeLessThan(LIMIT_KB);
      const s = JSON.parse(stats.stdout) as { records: number; invalid: number; errors: string[] };
      expect([s.records, s.invalid]).toEqual([2, 1]);
      expect(s.errors[0]).toMatch(warning);
      expect(stats.peakKb).toBeLessThan(LIMIT_KB);

      const out = path.join(work, 'converted.jsonl');
      const convert = run(['convert', file, '--from', 'alpaca', '--out', out, '--force']);
      expect(convert.code, convert.stderr).toBe(0);
      expect(convert.lines[0]).toMatch(new RegExp(`^warning: ${warning.source}$`));
      expect(
        readFileSync(out, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l).output),
      ).toEqual(['回答 1', '回答 3']);
      expect(convert.peakKb).toBeLessThan(LIMIT_KB);

      for (const shuffle of [[], ['--no-shuffle']]) {
        const mix = run(['mix', '--source', `a=${file}:2`, '--seed', '1', '--out', path.join(work, 'mixed.jsonl'), '--force', ...shuffle]);
        expect(mix.code, mix.stderr).toBe(0);
        expect(mix.lines[0]).toMatch(new RegExp(`^warning: ${warning.source}$`));
        expect(mix.stdout).toMatch(/\| a \| .* \| 3 \| 1 \| 0 \| 2 \| 2 \| 2 \| 2 \| 0 \|/);
        expect(mix.peakKb).toBeLessThan(LIMIT_KB);
      }

      const tok = run([
        'tokenize',
        '--kind',
        'sft',
        '--input',
        file,
        '--tokenizer',
        MODEL,
        '--out',
        path.join(work, 'tok'),
        '--force',
        '--max-seq-length',
        '64',
      ]);
      expect(tok.code, tok.stderr).toBe(0);
      expect(tok.lines[0]).toMatch(new RegExp(`^warning: ${warning.source}$`));
      expect(tok.stdout).toMatch(/^2 examples .* 1 skipped/);
      expect(tok.peakKb).toBeLessThan(LIMIT_KB);
    }
    const pt = run(['tokenize', '--kind', 'pt', '--input', hugeText, '--tokenizer', MODEL, '--out', path.join(work, 'pt'), '--force', '--block-size', '4']);
    expect(pt.code, pt.stderr).toBe(0);
    expect(pt.lines[0]).toMatch(new RegExp(`^warning: ${literal(hugeText)} line 2: \\d+ bytes, over the 8 MiB per-record limit`));
    expect(pt.stdout).toMatch(/from 2 lines.*1 skipped/);
    expect(pt.peakKb).toBeLessThan(LIMIT_KB);
  });

  it('--strict makes the huge record an error; a larger --max-record-bytes reads it (and the cleaning drops it)', () => {
    const strict = run(['convert', huge, '--from', 'alpaca', '--out', path.join(work, 's.jsonl'), '--strict']);
    expectOneLine(strict, /record 2 \(line 2\): \d+ bytes, over the 8 MiB per-record limit/);
    expect(existsSync(path.join(work, 's.jsonl'))).toBe(false);
    const stats = run(['stats', hugeLines, '--max-record-bytes', '200M', '--json']);
    expect(stats.code, stats.stderr).toBe(0);
    const s = JSON.parse(stats.stdout) as { records: number; invalid: number; wouldDrop: Record<string, number> };
    expect([s.records, s.invalid, s.wouldDrop['output-too-long']]).toEqual([3, 0, 1]);
  });

  it('--max-record-bytes takes K/M/G suffixes and refuses nonsense (exit 2)', () => {
    const small = run(['stats', ALPACA, '--max-record-bytes', '1K', '--json']);
    expect(small.code).toBe(0);
    const s = JSON.parse(small.stdout) as { records: number; invalid: number };
    expect(s.invalid).toBeGreaterThan(0);
    expect(s.records + s.invalid).toBe(1000);
    for (const bad of ['0', 'abc', '1.5M', '-3', '1e9']) {
      const r = run(['stats', ALPACA, '--max-record-bytes', bad]);
      expect(r.code).toBe(2);
      expect(r.lines).toEqual([`cllama-data: --max-record-bytes must be a positive number of bytes such as 8M or 65536, got '${bad}'`]);
    }
  });
});

describe('the readers skip an over-long record across read chunks without losing their place', () => {
  it('JSON arrays with escapes and backslash runs at every chunk-boundary offset, JSON lines and text lines', async () => {
    const limit = 64 << 10;
    for (let shift = 0; shift < 7; shift++) {
      const file = path.join(work, `escapes-${shift}.json`);
      // 3 MiB of `ab \"` / `\\` runs: chunk boundaries (1 MiB) land at every offset of the pattern across the shifts
      const body = `${'x'.repeat(shift)}${'ab \\\\\\"'.repeat(450_000)}`;
      writeFileSync(file, `[{"instruction": "a", "output": "b"}, {"instruction": "big", "output": "${body}"}, {"instruction": "c \\" ] , {", "output": "d"}]`);
      const items = [];
      for await (const it of readJsonRecords(file, { maxRecordBytes: limit })) items.push(it);
      expect(items.map((it) => (it.ok ? (it.value as { instruction: string }).instruction : 'skipped'))).toEqual(['a', 'skipped', 'c " ] , {']);
      expect(items[1].ok ? '' : items[1].error.problem).toMatch(/^\d+ bytes, over the 64 KiB per-record limit/);
    }
    const lines = path.join(work, 'lines.txt');
    writeFileSync(lines, `one\n${'y'.repeat(3 << 20)}\r\ntwo\n${'z'.repeat(100_000)}`);
    const errors: RecordError[] = [];
    const got: string[] = [];
    for await (const l of readTextLines(lines, (e) => errors.push(e), { maxRecordBytes: limit })) got.push(l);
    expect(got).toEqual(['one', 'two']);
    expect(errors.map((e) => e.where)).toEqual(['line 2', 'line 4']);
    const jsonl = path.join(work, 'lines.jsonl');
    writeFileSync(jsonl, `{"a": 1}\n{"b": "${'q'.repeat(3 << 20)}"}\n{"c": 3}\n`);
    const values = [];
    for await (const it of readJsonRecords(jsonl, { maxRecordBytes: limit })) values.push(it.ok ? it.value : it.where);
    expect(values).toEqual([{ a: 1 }, 'line 2', { c: 3 }]);
  });
});
