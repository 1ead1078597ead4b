/**
 * The trainer's source layout rules, checked on the files themselves (docs/architecture.md, "The
 * trainer"):
 *
 *   - no import circles between its modules;
 *   - only src/backend.ts (selection) and src/backends/ name a backend: elsewhere no comparison with a
 *     backend's name and no tf.getBackend() (kernel-names.ts asks tfjs's kernel registry, for any backend);
 *   - Biome's noRestrictedImports rule (biome.json) fires on an import of a backend from model/ or
 *     train/ (checked by linting probe files with the repository's biome.json in a temporary folder).
 *
 * The import graph is read with a regular expression over `import … from './x.js'`, `export … from`
 * and `import('./x.js')` (relative specifiers only: packages are not part of a circle inside this one),
 * type-only imports included — a circle of types is still two files that cannot be read apart.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** file → the files of this package it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) =>
      path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')),
    );
    graph.set(file, targets);
  }
  return graph;
}

/** Every elementary circle found by a depth-first walk, as `a.ts > b.ts > a.ts` (paths relative to src/). */
function circles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map((f) => path.relative(SRC, f)).join(' > '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('the trainer source layout', () => {
  it('has no import circles (madge --circular would say the same)', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(circles(graph)).toEqual([]);
  });

  it('the circle finder finds a circle (a > b > a) and one through three files', () => {
    const a = path.join(SRC, 'a.ts');
    const b = path.join(SRC, 'b.ts');
    const c = path.join(SRC, 'c.ts');
    expect(
      circles(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ),
    ).toEqual(['a.ts > b.ts > a.ts']);
    expect(
      circles(
        new Map([
          [a, [b]],
          [b, [c]],
          [c, [a]],
        ]),
      ),
    ).toEqual(['a.ts > b.ts > c.ts > a.ts']);
  });

  it('names a backend only in src/backend.ts and src/backends/ (no name comparisons, no tf.getBackend())', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(SRC, file);
      if (rel === 'backend.ts' || rel.startsWith(`backends${path.sep}`)) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const namesOne = /(===|!==)\s*'(wasm|native|webgpu|cpu|tensorflow)'|'(wasm|native|webgpu|cpu|tensorflow)'\s*(===|!==)/.test(line);
          const asksTfjs = /getBackend\(\)/.test(line) && rel !== 'kernel-names.ts';
          if (namesOne || asksTfjs) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });

  it("Biome's restricted-imports rule refuses a backend import from model/ and train/, and allows the facts", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cllama-layout-'));
    try {
      const config = JSON.parse(readFileSync(path.join(REPO_ROOT, 'biome.json'), 'utf8'));
      config.vcs = { enabled: false };
      delete config.$schema;
      writeFileSync(path.join(dir, 'biome.json'), JSON.stringify(config));
      const probe = [
        "import { loadOrt } from '../backends/native/ort.js';",
        "import { WEBGPU_FACTS } from '../backends/webgpu/facts.js';",
        "import '@tensorflow/tfjs-backend-wasm';",
        "import { backendFacts } from '../backends/registry.js';",
        "import { hasKernel } from '../kernel-names.js';",
        'export const used = [loadOrt, WEBGPU_FACTS, backendFacts, hasKernel];',
        '',
      ].join('\n');
      for (const where of ['model', 'train', 'launch']) {
        mkdirSync(path.join(dir, 'packages/trainer/src', where), { recursive: true });
        writeFileSync(path.join(dir, 'packages/trainer/src', where, 'probe.ts'), probe);
      }
      let out = '';
      try {
        execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/biome'), ['lint', '--max-diagnostics=100', '.'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
      } catch (err) {
        const e = err as { stdout: string; stderr: string };
        out = `${e.stdout}${e.stderr}`;
      }
      const hits = [...out.matchAll(/(\S+probe\.ts):(\d+):\d+ lint\/style\/noRestrictedImports/g)].map((m) => `${m[1]}:${m[2]}`).sort();
      // lines 1–3 (a backend's folder, another backend's facts file, a backend package) in model/ and train/;
      // the facts registry and the kernel names pass, and outside model/ and train/ nothing is refused
      expect(hits).toEqual([
        'packages/trainer/src/model/probe.ts:1',
        'packages/trainer/src/model/probe.ts:2',
        'packages/trainer/src/model/probe.ts:3',
        'packages/trainer/src/train/probe.ts:1',
        'packages/trainer/src/train/probe.ts:2',
        'packages/trainer/src/train/probe.ts:3',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
