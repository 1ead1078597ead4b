// Publishability: every package packs into a tarball that a scratch TypeScript project outside the
// workspace installs and imports as ESM and as CJS, with types, and whose CLI answers --help.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

/** Public functions / classes each package must export (checked by value and by type). */
const PACKAGES: Record<string, { dir: string; bin: string; exports: string[] }> = {
  '@cllama/tokenizer-merge': { dir: 'packages/tokenizer-merge', bin: 'cllama-tokenizer', exports: ['mergeVocab', 'loadTokenizer', 'parseModelProto', 'trainSentencePiece'] },
  '@cllama/lora': { dir: 'packages/lora', bin: 'cllama-lora', exports: ['SafetensorsFile', 'HFCheckpoint', 'readPeftAdapter', 'countTrainableParameters'] },
  '@cllama/trainer': { dir: 'packages/trainer', bin: 'cllama-train', exports: ['LlamaModel', 'loadLlama', 'initBackend', 'DataParallel', 'runTrainingSession'] },
  '@cllama/alpaca-data': { dir: 'packages/alpaca-data', bin: 'cllama-data', exports: ['buildSftExample', 'openTokenizedDataset', 'collate'] },
  '@cllama/prompt-crawler': { dir: 'packages/prompt-crawler', bin: 'cllama-crawl', exports: ['crawl', 'parseReply', 'RougeLIndex'] },
};

let work: string;
let scratch: string;

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'cllama-pack-'));
  const tarballs = Object.values(PACKAGES).map(({ dir }) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', work], path.join(repoRoot, dir));
    const [{ filename }] = JSON.parse(out) as Array<{ filename: string }>;
    return path.join(work, filename);
  });
  scratch = path.join(work, 'scratch');
  execFileSync('mkdir', ['-p', scratch]);
  writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true }, null, 2));
  // Dependencies come from the npm registry (or npm's cache), the @cllama packages from the tarballs.
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], scratch);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack → install in a scratch project outside the workspace', () => {
  it('tarballs hold only the built files', () => {
    for (const name of Object.keys(PACKAGES)) {
      const pkgDir = path.join(scratch, 'node_modules', name);
      const files = readdirSync(pkgDir).sort();
      expect(files).toContain('dist');
      expect(files).toContain('package.json');
      expect(files).not.toContain('src');
      expect(files).not.toContain('test');
    }
  });

  it('imports as ESM', () => {
    const lines = Object.entries(PACKAGES).map(
      ([name, { exports }], i) =>
        `import * as m${i} from '${name}';\n` +
        exports.map((e) => `if (m${i}[${JSON.stringify(e)}] === undefined) throw new Error('${name}: missing ESM export ${e}');`).join('\n'),
    );
    writeFileSync(path.join(scratch, 'check.mjs'), `${lines.join('\n')}\nconsole.log('esm ok');\n`);
    expect(run('node', ['check.mjs'], scratch).trim()).toBe('esm ok');
  });

  it('requires as CJS', () => {
    const lines = Object.entries(PACKAGES).map(
      ([name, { exports }], i) =>
        `const m${i} = require('${name}');\n` +
        exports.map((e) => `if (m${i}[${JSON.stringify(e)}] === undefined) throw new Error('${name}: missing CJS export ${e}');`).join('\n'),
    );
    writeFileSync(path.join(scratch, 'check.cjs'), `${lines.join('\n')}\nconsole.log('cjs ok');\n`);
    expect(run('node', ['check.cjs'], scratch).trim()).toBe('cjs ok');
  });

  it('type-checks against the shipped declarations (ESM and CJS resolution)', () => {
    const imports = Object.entries(PACKAGES)
      .map(([name, { exports }], i) => `import * as m${i} from '${name}';\nvoid [${exports.map((e) => `m${i}.${e}`).join(', ')}];`)
      .join('\n');
    writeFileSync(path.join(scratch, 'check-esm.mts'), `${imports}\n`);
    writeFileSync(path.join(scratch, 'check-cjs.cts'), `${imports}\n`);
    // A deliberately wrong use must fail, so a missing .d.ts (everything `any`) cannot pass silently.
    const [firstName, first] = Object.entries(PACKAGES)[0];
    writeFileSync(path.join(scratch, 'wrong.mts'), `import { ${first.exports[0]} } from '${firstName}';\nconst x: { definitelyNotThere: 1 } = ${first.exports[0]};\nvoid x;\n`);
    const tsc = require.resolve('typescript/bin/tsc');
    const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules/@types')];
    run('node', [tsc, ...flags, 'check-esm.mts', 'check-cjs.cts'], scratch);
    expect(() => run('node', [tsc, ...flags, 'wrong.mts'], scratch)).toThrow(/TS2322|TS2741|TS2739|TS2559/);
  });

  it('each CLI answers --help from node_modules/.bin', () => {
    for (const [name, { bin }] of Object.entries(PACKAGES)) {
      const version = JSON.parse(readFileSync(path.join(scratch, 'node_modules', name, 'package.json'), 'utf8')).version;
      expect(version).toMatch(/^\d+\.\d+\.\d+/);
      const out = run(path.join(scratch, 'node_modules/.bin', bin), ['--help'], scratch);
      expect(out).toMatch(/Usage/i);
    }
  });
});
