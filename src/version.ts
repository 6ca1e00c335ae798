// atlas's version, from package.json (dist/src/version.js -> ../../package.json).
import fs from 'node:fs';

export const VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
