// Picks the store backend: PostgreSQL when `store: postgres://...` is in config.yaml or
// ATLAS_STORE_URL is set (the variable wins), else the filesystem store in the home.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { FILE_MODE } from './atomic.js';
import { FsStore } from './fs-store.js';
import type { HomePaths } from './paths.js';
import { isPostgresUrl } from './pg/connect.js';
import { PgStore } from './pg/pg-store.js';
import type { Store, Warn } from './store.js';

/** The store URL in force: ATLAS_STORE_URL, else `store:` from config.yaml, else none (fs). */
export function storeUrl(config: Config): string | null {
  const env = process.env['ATLAS_STORE_URL'];
  if (env !== undefined && env !== '' && env !== 'fs') {
    if (!isPostgresUrl(env)) throw new AtlasError('config_invalid', `ATLAS_STORE_URL: expected a postgres://user@host/db URL or 'fs'`);
    return env;
  }
  if (env === 'fs') return null;
  return config.store_url;
}

export function openStore(paths: HomePaths, config: Config, options: { warn?: Warn } = {}): Store {
  const url = storeUrl(config);
  if (url === null) return new FsStore(paths.root, options.warn ? { warn: options.warn } : {});
  return new PgStore({
    target: { url, schema: config.store_schema },
    paths,
    daemonId: daemonIdOf(paths),
    ttlMs: config.lease_ttl_ms,
    ...(options.warn ? { warn: options.warn } : {}),
  });
}

/** This home's stable daemon id (kept in `daemon.id`, made at first use). */
export function daemonIdOf(paths: HomePaths): string {
  const file = path.join(paths.root, 'daemon.id');
  const read = (): string | undefined => {
    try {
      const id = fs.readFileSync(file, 'utf8').trim();
      return /^[a-z0-9][a-z0-9._-]{0,63}$/.test(id) ? id : undefined;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw storageError('read', file, err);
    }
  };
  const known = read();
  if (known) return known;
  const host = os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 40) || 'host';
  try {
    fs.mkdirSync(paths.root, { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, `${host}-${crypto.randomBytes(4).toString('hex')}\n`, { mode: FILE_MODE, flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw storageError('create', file, err);
  }
  const id = read();
  if (!id) throw new AtlasError('corrupt', `${file} does not hold a daemon id; remove it and start again`);
  return id;
}
