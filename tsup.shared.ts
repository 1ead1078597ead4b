import type { Options } from 'tsup';

/**
 * The build every package shares: the library as ESM + CJS with type declarations (so users can
 * `import` or `require` it with types), and the CLI as an ESM bin with a shebang.
 */
export function packageBuild(extra: Partial<Options> = {}): Options[] {
  return [
    ...libraryBuild(extra),
    {
      entry: { cli: 'src/cli.ts' },
      format: ['esm'],
      sourcemap: true,
      target: 'node20',
      banner: { js: '#!/usr/bin/env node' },
    },
  ];
}

/** The library part alone (for packages without a CLI, such as @cllama/core). */
export function libraryBuild(extra: Partial<Options> = {}): Options[] {
  return [
    {
      entry: { index: 'src/index.ts' },
      format: ['esm', 'cjs'],
      dts: true,
      sourcemap: true,
      clean: true,
      target: 'node20',
      ...extra,
    },
  ];
}
