// atlas's version, from its package.json.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from './util/package-root.js';

export const VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
