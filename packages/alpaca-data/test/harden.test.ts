/**
 * Bad input and faults (issue #14) through the built CLI: nothing existing is replaced without --force,
 * an output that is an input is refused always, a failing --report leaves no --out behind, number flags
 * are whole numbers in range, and a command that would write 0 records fails and writes nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DATA, MERGED_MODEL } from './helpers.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const tmp = () => mkdtempSync(path.join(tmpdir(), 'cllama-harden-'));
const ALPACA = path.join(DATA, 'alpaca_zh_demo.json');
const oneLine = (s: string) => expect(s.trim().split('\n')).toHaveLength(1);

describe('no clobbering', () => {
  it('convert refuses an existing --out without --force, replaces it with --force', () => {
    const d = tmp();
    const out = path.join(d, 'out.jsonl');
    writeFileSync(out, 'precious\n');
    const r = run('convert', '--from', 'alpaca', ALPACA, '--out', out);
    expect(r.code).toBe(1);
    oneLine(r.err);
    expect(r.err).toBe(`cllama-data: --out ${out} exists; pass --force to replace it, or choose another path\n`);
    expect(readFileSync(out, 'utf8')).toBe('precious\n');
    const f = run('convert', '--from', 'alpaca', ALPACA, '--out', out, '--force');
    expect(f.code, f.err).toBe(0);
    expect(readFileSync(out, 'utf8').split('\n').filter(Boolean).length).toBe(1000);
  });

  it('convert refuses its own input as --out, even with --force and through another spelling or a symlink', () => {
    const d = tmp();
    const input = path.join(d, 'data.json');
    const text = readFileSync(ALPACA, 'utf8');
    writeFileSync(input, text);
    symlinkSync(input, path.join(d, 'link.json'));
    for (const out of [input, path.join(d, '.', 'sub', '..', 'data.json'), path.join(d, 'link.json')]) {
      if (out.includes('sub')) mkdirSync(path.join(d, 'sub'), { recursive: true });
      const r = run('convert', '--from', 'alpaca', input, '--out', out, '--force');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^cllama-data: --out .* is also an input \(.*data\.json\); write to another file\n$/);
    }
    expect(readFileSync(input, 'utf8')).toBe(text);
  });

  it('mix refuses an existing --out or --report, and a --report that is a source or the --out', () => {
    const d = tmp();
    const out = path.join(d, 'mixed.jsonl');
    writeFileSync(out, 'precious\n');
    const src = `a=${ALPACA}:10`;
    expect(run('mix', '--source', src, '--seed', '1', '--out', out).err).toMatch(/--out .* exists; pass --force/);
    expect(readFileSync(out, 'utf8')).toBe('precious\n');
    const out2 = path.join(d, 'm2.jsonl');
    expect(run('mix', '--source', src, '--seed', '1', '--out', out2, '--report', out2).err).toMatch(/--report .* is also an input/);
    expect(run('mix', '--source', src, '--seed', '1', '--out', ALPACA, '--force').err).toMatch(/--out .* is also an input/);
    expect(readdirSync(d)).toEqual(['mixed.jsonl']);
  });

  it('tokenize refuses to replace an existing dataset without --force', () => {
    const d = tmp();
    const out = path.join(d, 'ds');
    const args = ['tokenize', '--kind', 'sft', '--tokenizer', MERGED_MODEL, '--input', ALPACA, '--out', out, '--quiet'];
    expect(run(...args).code).toBe(0);
    const before = readFileSync(path.join(out, 'meta.json'), 'utf8');
    const r = run(...args);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^cllama-data: --out .*ds exists; pass --force/);
    expect(run(...args, '--force').code).toBe(0);
    expect(readFileSync(path.join(out, 'meta.json'), 'utf8')).toBe(before);
  });
});

describe('half-written outputs', () => {
  it('mix leaves no --out behind when the --report cannot be written', () => {
    const d = tmp();
    const out = path.join(d, 'mixed.jsonl');
    const notADir = path.join(d, 'notadir');
    writeFileSync(notADir, 'a file where a folder should be\n');
    const r = run('mix', '--source', `a=${ALPACA}:10`, '--seed', '1', '--out', out, '--report', path.join(notADir, 'report.md'));
    expect(r.code).toBe(1);
    oneLine(r.err);
    expect(readdirSync(d).sort()).toEqual(['notadir']);
    const report = path.join(d, 'report.md');
    const ok = run('mix', '--source', `a=${ALPACA}:10`, '--seed', '1', '--out', out, '--report', report);
    expect(ok.code, ok.err).toBe(0);
    expect(readFileSync(out, 'utf8').split('\n').filter(Boolean)).toHaveLength(10);
    expect(readFileSync(report, 'utf8')).toMatch(/^# Mix report/);
  });
});

describe('numbers and empty results', () => {
  it('refuses whole-number flags written as 1e99, 1.5, abc or out of range', () => {
    const d = tmp();
    const out = path.join(d, 'o.jsonl');
    const src = `a=${ALPACA}:10`;
    expect(run('mix', '--source', src, '--seed', '1e99', '--out', out).err).toMatch(/--seed must be an integer, got '1e99'/);
    expect(run('mix', '--source', src, '--seed', 'abc', '--out', out).err).toMatch(/--seed must be an integer, got 'abc'/);
    const neg = run('mix', '--source', src, '--seed', '1', '--out', out, '--max-output-chars', '-1');
    expect(neg.code).not.toBe(0);
    expect(neg.code).toBe(2);
    expect(neg.err).toMatch(/--max-output-chars must be a positive integer, got '-1'/);
    expect(run('convert', '--from', 'alpaca', ALPACA, '--out', out, '--seed', '1.5').err).toMatch(/--seed must be an integer/);
    expect(readdirSync(d)).toEqual([]);
  });

  it('convert, mix and tokenize that would write 0 records fail and write nothing', () => {
    const d = tmp();
    const bad = path.join(d, 'bad.jsonl');
    writeFileSync(bad, '{"x": 1}\n{"y": 2}\n');
    const c = run('convert', '--from', 'alpaca', bad, '--out', path.join(d, 'c.jsonl'), '--quiet');
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/^cllama-data: .*bad\.jsonl: no usable records \(2 read, 2 skipped; first: .*\); nothing was written\n$/);
    const m = run('mix', '--source', `a=${ALPACA}:0`, '--seed', '1', '--out', path.join(d, 'm.jsonl'));
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/^cllama-data: mix: no records to write/);
    const t = run('tokenize', '--kind', 'sft', '--tokenizer', MERGED_MODEL, '--input', bad, '--out', path.join(d, 'ds'), '--quiet');
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/^cllama-data: tokenize: no usable records in .*bad\.jsonl \(2 skipped\); nothing was written\n$/);
    const txt = path.join(d, 'short.txt');
    writeFileSync(txt, '短\n');
    const p = run('tokenize', '--kind', 'pt', '--tokenizer', MERGED_MODEL, '--input', txt, '--out', path.join(d, 'pt'), '--quiet');
    expect(p.code).toBe(1);
    expect(p.err).toMatch(/make no full block of 512 tokens/);
    expect(readdirSync(d).sort()).toEqual(['bad.jsonl', 'short.txt']);
  });
});
