#!/usr/bin/env node
// Bundles the daemon (dist/src/daemon/main.js and what it imports) into one file,
// dist/daemon.mjs: loading one file instead of ~100 modules halves the daemon's start time.
// Packages stay external only where they must be loaded from node_modules at run time.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/src/daemon/main.js'],
  outfile: 'dist/daemon.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS dependencies bundled into an ES module need a `require` of their own.
  banner: { js: "import { createRequire as __atlasCreateRequire } from 'node:module'; const require = __atlasCreateRequire(import.meta.url);" },
});
