// Packages only some daemons use (YAML, PostgreSQL, tar), loaded at their first use rather than at start. node-postgres
// alone cost a daemon on the filesystem store about a tenth of its start time (loading it
// pulls in Node's fetch implementation), and tar-stream is needed only by backups and archives.
// They are required from node_modules at run time, so the daemon bundle leaves them out.
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** `name`'s exports, required once, the first time the returned function is called. */
export function lazyPackage<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(name) as T);
}

/** The YAML parser: the daemon parses YAML only when it reads config.yaml or a template. */
export const lazyYaml = lazyPackage<typeof import('yaml')>('yaml');
