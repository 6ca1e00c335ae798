#!/usr/bin/env node
// Bundles the daemon (dist/src/daemon/main.js and what it imports) into one file,
// dist/daemon.mjs: loading one file instead of ~100 modules halves the daemon's start time.
// Packages stay external only where they must be loaded from node_modules at run time.
import fs from 'node:fs';
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

// The web dashboard (web/): one ES module, its stylesheet and page, served by the daemon's
// HTTP listener from dist/web. Everything it loads is in this folder: no CDN, no web font.
await build({
  entryPoints: ['web/app.ts'],
  outfile: 'dist/web/app.js',
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css', 'favicon.svg']) fs.copyFileSync(`web/${f}`, `dist/web/${f}`);
// The PostgreSQL store's SQL migrations ship beside the bundle (dist/migrations), where
// src/store/pg/migrate.ts looks for them from both dist/daemon.mjs and dist/src.
fs.rmSync('dist/migrations', { recursive: true, force: true });
fs.cpSync('src/store/pg/migrations', 'dist/migrations', { recursive: true });
