// The runner is tested by spawning a real script (a commander program run through runMain), so the
// exit codes and the exact stderr are the ones a user sees.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CllamaError, errorLine, UsageError } from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'cllama-core-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const script = path.join(work, 'demo.ts');
writeFileSync(
  script,
  `import { Command } from ${JSON.stringify(path.join(here, '../node_modules/commander/index.js'))};
import { runMain, UsageError, CllamaError, AtomicFileWriter } from ${JSON.stringify(path.join(here, '../src/index.ts'))};
const program = new Command('demo').version('1.2.3');
const sub = program.command('go').requiredOption('--out <file>', 'output').option('--n <k>', 'count', (v) => { if (!/^\\d+$/.test(v)) throw new UsageError('--n must be an integer, got ' + JSON.stringify(v)); return Number(v); });
sub.action(async (o) => {
  if (o.out === 'json') JSON.parse('{\\n"a": }');
  if (o.out === 'dir') { const fs = await import('node:fs/promises'); await fs.writeFile(${JSON.stringify(work)}, 'x'); }
  if (o.out === 'fail') throw new CllamaError('it failed; try again');
  if (o.out === 'three') throw new CllamaError('stopped early', { exitCode: 3 });
  if (o.out === 'stream') {
    // a large output on stdout while an atomic file is being written, as the data CLIs do
    const w = await AtomicFileWriter.create(${JSON.stringify(path.join(work, 'in-flight.jsonl'))});
    await w.write('x\\n');
    await w.flush();
    for (let i = 0; i < 200000; i++) process.stdout.write('line ' + i + '\\n');
    console.log('and through console.log');
    await new Promise((r) => setTimeout(r, 200));
    await w.commit();
  }
  console.log('ok ' + o.out);
});
void runMain(program);
`,
);

function demo(...args: string[]) {
  return demoTo('pipe', ...args);
}

function demoTo(stdout: 'pipe' | number, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    encoding: 'utf8',
    cwd: path.join(here, '..'),
    stdio: ['ignore', stdout, 'pipe'],
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLine(r: { code: number | null; stderr: string }, code: number, pattern: RegExp) {
  expect(r.code).toBe(code);
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^demo: /);
  expect(lines[0]).toMatch(pattern);
}

describe('runMain / runCli', () => {
  it('help, version and no arguments exit 0 with output on stdout', () => {
    expect(demo('--help')).toMatchObject({ code: 0, stderr: '' });
    expect(demo('go', '--help').stdout).toMatch(/--out <file>/);
    expect(demo('--version')).toMatchObject({ code: 0, stdout: '1.2.3\n' });
    expect(demo().stdout).toMatch(/Usage: demo/);
    expect(demo().code).toBe(0);
  });
  it('commander usage errors: one line, exit 2', () => {
    expectOneLine(demo('go'), 2, /required option '--out <file>' not specified/);
    expectOneLine(demo('go', '--out', 'x', '--bogus'), 2, /unknown option '--bogus'/);
    expectOneLine(demo('nope'), 2, /unknown command 'nope'/);
  });
  it('a UsageError from a flag parser exits 2', () => {
    expectOneLine(demo('go', '--out', 'x', '--n', 'abc'), 2, /^demo: --n must be an integer, got "abc"$/);
  });
  it('failures exit 1 (or the error’s code) with one line, even for multi-line parser messages and raw fs errors', () => {
    expectOneLine(demo('go', '--out', 'fail'), 1, /^demo: it failed; try again$/);
    expectOneLine(demo('go', '--out', 'three'), 3, /stopped early/);
    expectOneLine(demo('go', '--out', 'json'), 1, /JSON/);
    expectOneLine(demo('go', '--out', 'dir'), 1, new RegExp(`EISDIR.*${path.basename(work)}`));
    expect(demo('go', '--out', 'fine')).toMatchObject({ code: 0, stdout: 'ok fine\n', stderr: '' });
  });
  it.skipIf(!existsSync('/dev/full'))(
    'a stdout that cannot be written (> /dev/full) ends with one line and exit 1, and the atomic write in flight leaves nothing',
    () => {
      const full = openSync('/dev/full', 'w');
      try {
        const r = demoTo(full, 'go', '--out', 'stream');
        expect(r.code).toBe(1);
        expect(r.stderr).toBe('demo: cannot write to stdout: no space left on device (ENOSPC)\n');
        expect(readdirSync(work).filter((n) => n.includes('in-flight'))).toEqual([]);
      } finally {
        closeSync(full);
      }
    },
  );
  it('a closed stdout (| head) ends quietly with exit 0, leaving nothing', () => {
    const r = spawnSync('sh', ['-c', `"${process.execPath}" --import tsx "${script}" go --out stream | head -1`], {
      encoding: 'utf8',
      cwd: path.join(here, '..'),
    });
    expect(r.stdout).toBe('line 0\n');
    expect(r.stderr).toBe('');
    expect(readdirSync(work).filter((n) => n.includes('in-flight'))).toEqual([]);
  });
});

describe('errors', () => {
  it('carry exit codes and names', () => {
    expect(new CllamaError('x').exitCode).toBe(1);
    expect(new UsageError('x').exitCode).toBe(2);
    expect(new UsageError('x').name).toBe('UsageError');
    class MyError extends CllamaError {}
    expect(new MyError('y').name).toBe('MyError');
    expect(errorLine(new Error('a\n  b'))).toBe('a b');
    expect(errorLine('plain')).toBe('plain');
    const raw = Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR', path: '/some/dir' });
    expect(errorLine(raw)).toBe('EISDIR: illegal operation on a directory, read (/some/dir)');
  });
});
