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

function expectOneLine(r: { code: number | null; stderr: string }, code: number, pattern: RegExp, cli = /^(demo|tool): /) {
  expect(r.code).toBe(code);
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(cli);
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

// The same runner on a defineCommand value: the table's flags, positionals, negations, repeats,
// choices, hidden aliases, help groups and example, and a run's exit code.
const toolScript = path.join(work, 'tool.ts');
writeFileSync(
  toolScript,
  `import { defineCommand, integerFlag, runMain } from ${JSON.stringify(path.join(here, '../src/index.ts'))};
const greet = defineCommand({
  meta: { name: 'greet', description: 'greet someone', example: 'tool greet world --times 2', isDefault: true },
  args: {
    name: { type: 'positional', description: 'who' },
    times: { type: 'string', valueHint: 'n', description: 'how often', parse: integerFlag('--times', { min: 1 }), default: 1 },
    tag: { type: 'string', valueHint: 'tag', description: 'a tag (repeatable)', repeatable: true },
    level: { type: 'string', valueHint: 'level', description: 'how loud', choices: ['low', 'high'], default: 'low' },
    'no-color': { type: 'boolean', description: 'plain text' },
    force: { type: 'boolean', description: 'replace' },
    old: { type: 'boolean', description: 'old name of --force', hidden: true },
    json: { type: 'boolean', description: 'print JSON' },
  },
  run: ({ args, given }) => {
    console.log(JSON.stringify({ ...args, timesGiven: given('times'), levelGiven: given('level') }));
  },
});
const stop = defineCommand({ meta: { name: 'stop', description: 'stop early' }, run: () => 3 });
void runMain(defineCommand({ meta: { name: 'tool', description: 'a demo tool' }, subCommands: [greet, stop] }));
`,
);

function tool(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', toolScript, ...args], { encoding: 'utf8', cwd: path.join(here, '..') });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('defineCommand', () => {
  it('parses the table: positionals, parsers, repeats, choices, negations, hidden aliases; given() tells flags from defaults', () => {
    const r = tool('greet', 'world', '--times', '2', '--tag', 'a', '--tag', 'b', '--no-color', '--old', '--json');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual({
      name: 'world',
      times: 2,
      tag: ['a', 'b'],
      level: 'low',
      color: false,
      old: true,
      json: true,
      timesGiven: true,
      levelGiven: false,
    });
    // the default subcommand
    expect(JSON.parse(tool('someone').stdout)).toMatchObject({ name: 'someone', times: 1, color: true });
  });
  it('help: usage, description, flags grouped (Options, Output), hidden aliases left out, one example', () => {
    const r = tool('greet', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tool greet \[options\] <name>\n\ngreet someone\n\nArguments:\n/);
    expect(r.stdout).toMatch(/\nOptions:\n {2}--times <n> +how often \(default: 1\)\n/);
    expect(r.stdout).toMatch(/\nOutput:\n {2}--force +replace\n {2}--json +print JSON\n/);
    expect(r.stdout).not.toMatch(/--old/);
    expect(r.stdout).toMatch(/\nExample:\n {2}\$ tool greet world --times 2\n$/);
    expect(tool('--help').stdout).toMatch(/greet \[options\] <name> +greet someone/);
  });
  it('usage errors exit 2 with one line; a run that returns a number sets the exit code', () => {
    expectOneLine(tool('greet', 'w', '--times', '0'), 2, /^tool: --times must be a positive integer, got '0'$/);
    expectOneLine(tool('greet', 'w', '--level', 'x'), 2, /^tool: option '--level <level>' argument 'x' is invalid\. Allowed choices are low, high\.$/);
    expectOneLine(tool('greet', 'w', '--bogus'), 2, /^tool: unknown option '--bogus'$/);
    expect(tool('stop')).toMatchObject({ code: 3, stdout: '', stderr: '' });
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
