// The YAML parser, loaded on first use: the daemon only parses YAML when it reads
// config.yaml or a template, so it need not pay for loading the parser at start.
import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');
const require = createRequire(import.meta.url);
let mod: Yaml | undefined;

export function lazyYaml(): Yaml {
  return (mod ??= require('yaml') as Yaml);
}
