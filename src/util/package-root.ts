// The directory of atlas's package.json, found by walking up from this module. Code that
// locates the package's own files (templates/, package.json) uses it, so it works the same
// from dist/src/... and from the bundled daemon.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    try {
      if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'atlas') return (root = dir);
    } catch {
      // not here
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find atlas's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
