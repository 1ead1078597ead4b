import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared';

// shims: the CJS build needs import.meta.url for locating the bundled data files.
export default defineConfig(packageBuild({ shims: true }));
