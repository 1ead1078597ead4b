// Our commands after the README's set-up (`npm ci`, then a build): every command of the README's
// "Each step on its own" list runs OUR bin through npx, and npx never asks the registry.
//
// Why this can break: npm links workspace bins when it installs, before anything is built. A `bin`
// that points into dist/ does not exist yet in a fresh clone, so npm skips the link and
// `npx cllama-tokenizer` falls through to the registry (someone else's package of that name). Each
// package's bin is therefore a small committed shim, bin/<name>.js, that imports ../dist/cli.js.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Workspace {
  dir: string;
  bins: Record<string, string>;
}

function workspacesWithBins(): Workspace[] {
  const root = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces
    .map((dir) => ({
      dir,
      pkg: JSON.parse(readFileSync(path.join(repoRoot, dir, 'package.json'), 'utf8')) as { bin?: Record<string, string>; files?: string[] },
    }))
    .filter(({ pkg }) => pkg.bin)
    .map(({ dir, pkg }) => ({ dir, bins: pkg.bin! }));
}

/** The `npx <bin> <subcommand>` lines of the README's "Each step on its own" block. */
function readmeSteps(): Array<{ bin: string; sub: string }> {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('Each step on its own');
  expect(start).toBeGreaterThan(0);
  const block = /```bash\n([\s\S]*?)```/.exec(readme.slice(start))![1]!;
  return block
    .split('\n')
    .filter((l) => l.startsWith('npx '))
    .map((l) => {
      const [, bin, sub] = l.split(/\s+/);
      return { bin: bin!, sub: sub! };
    });
}

describe('bins work straight after npm ci, and npx never reaches the registry', () => {
  it('every bin is a committed, executable shim that does not need dist/ to be linked', () => {
    const tracked = execFileSync('git', ['ls-files', '-s'], { cwd: repoRoot, encoding: 'utf8' });
    for (const { dir, bins } of workspacesWithBins()) {
      const pkg = JSON.parse(readFileSync(path.join(repoRoot, dir, 'package.json'), 'utf8')) as { files: string[] };
      expect(pkg.files).toContain('bin');
      for (const [name, target] of Object.entries(bins)) {
        const rel = path.posix.join(dir, target.replace(/^\.\//, ''));
        expect(rel, `${name} must not point into dist/ (not there when npm links)`).not.toMatch(/\/dist\//);
        expect(
          tracked.split('\n').find((l) => l.endsWith(`\t${rel}`)),
          `${rel} is not committed`,
        ).toMatch(/^100755 /);
        expect(readFileSync(path.join(repoRoot, rel), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
      }
    }
  });

  it('npm has linked every bin into node_modules/.bin, pointing at our shim', () => {
    for (const { dir, bins } of workspacesWithBins()) {
      for (const [name, target] of Object.entries(bins)) {
        const link = path.join(repoRoot, 'node_modules/.bin', name);
        expect(existsSync(link), `${link} is missing: run npm ci (or npm install) so npm links the workspace bins`).toBe(true);
        expect(realpathSync(link)).toBe(realpathSync(path.join(repoRoot, dir, target)));
        expect(readlinkSync(link)).not.toMatch(/dist/);
      }
    }
  });

  it.each(readmeSteps())('npx $bin $sub --help runs our bin offline', ({ bin, sub }) => {
    const known = workspacesWithBins().flatMap((w) => Object.keys(w.bins));
    expect(known).toContain(bin);
    const r = spawnSync('npx', ['--no-install', bin, sub, '--help'], {
      cwd: repoRoot,
      encoding: 'utf8',
      // offline: a registry request fails instead of fetching someone else's package
      env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: ${bin} ${sub} `));
  });

  it('a bin run before the build says to build first, in one line', () => {
    // simulate a fresh clone: point the shim at a dist/ that does not exist
    const shim = readFileSync(path.join(repoRoot, 'packages/lora/bin/cllama-lora.js'), 'utf8').replace('../dist/cli.js', '../dist-missing/cli.js');
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', shim.replace(/^#!.*\n/, '').replace('import.meta.url', JSON.stringify(`file://${repoRoot}/packages/lora/bin/x.js`))],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('cllama-lora: not built yet; run `npm run build` in the repository first\n');
  });
});
