import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

// The data-parallel worker (src/train/grad-worker.ts) is its own ESM entry next to the bundles, which
// locate it through import.meta.url (shimmed in the CJS build) or __dirname.
const [library, cli] = packageBuild({ shims: true });
export default defineConfig([library!, { ...cli!, entry: { cli: 'src/cli.ts', 'grad-worker': 'src/train/grad-worker.ts' } }]);
