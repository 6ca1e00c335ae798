// PostgreSQL for tests: the server this machine runs (a local socket or 127.0.0.1:5432, or
// ATLAS_TEST_PG_URL), a fresh database per test file, dropped at the end. Without a server,
// a suite is skipped with one line saying why; under CI=true a missing server fails instead.
import crypto from 'node:crypto';
import os from 'node:os';
import { after, before } from 'node:test';
import pg from 'pg';
import { HomePaths } from '../../src/store/paths.js';
import { PgStore, type PgStoreOptions } from '../../src/store/pg/pg-store.js';

const CANDIDATES = [
  process.env['ATLAS_TEST_PG_URL'],
  'postgres://postgres@localhost/postgres?host=/var/run/postgresql',
  'postgres://postgres@127.0.0.1:5432/postgres',
  'postgres://root@127.0.0.1:5432/postgres',
].filter((u): u is string => typeof u === 'string' && u.length > 0);

let found: Promise<string | undefined> | undefined;

/** An admin URL of a reachable server, or undefined. */
export function pgAdminUrl(): Promise<string | undefined> {
  found ??= (async () => {
    for (const url of CANDIDATES) {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        return url;
      } catch {
        // next
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    return undefined;
  })();
  return found;
}

/** undefined when PostgreSQL can be used; else the reason to skip (and under CI=true, throws). */
export async function pgSkipReason(): Promise<string | undefined> {
  if (await pgAdminUrl()) return undefined;
  const why = 'no PostgreSQL server reachable (local socket /var/run/postgresql or 127.0.0.1:5432; set ATLAS_TEST_PG_URL)';
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${why}`);
  console.log(`# skipping PostgreSQL tests: ${why}`);
  return why;
}

export interface TestDatabase {
  /** The URL of the fresh database. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** Creates a fresh database `atlas_test_<tag>_<random>`; drop() removes it (ending its connections). */
export async function freshDatabase(tag: string): Promise<TestDatabase> {
  const admin = await pgAdminUrl();
  if (!admin) throw new Error('no PostgreSQL server');
  const name = `atlas_test_${tag.replace(/[^a-z0-9_]/g, '_')}_${crypto.randomBytes(4).toString('hex')}`;
  await adminQuery(admin, `CREATE DATABASE ${name}`);
  return {
    url: withDb(admin, name),
    name,
    async drop() {
      await adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export interface FileDatabase {
  /** The reason to skip this file's PostgreSQL tests (no server), for `test(name, { skip }, ...)`. */
  skip: string | undefined;
  /** The file's fresh database (set once its `before` hook ran). */
  readonly url: string;
  readonly name: string;
}

/**
 * The database of one test file: created (unique name) before its tests, dropped after them,
 * so parallel files and other people's runs never share one. Call at the top level of a file.
 */
export async function fileDatabase(tag: string): Promise<FileDatabase> {
  const skip = await pgSkipReason();
  let db: TestDatabase | undefined;
  if (!skip) {
    before(async () => {
      db = await freshDatabase(tag);
    });
    after(async () => {
      await db?.drop();
    });
  }
  const current = (): TestDatabase => {
    if (!db) throw new Error('the test database is not made yet (use it inside a test)');
    return db;
  };
  return {
    skip,
    get url() {
      return current().url;
    },
    get name() {
      return current().name;
    },
  };
}

/** A PostgreSQL store of daemon `daemonId` on `schema` of the database at `url` (not yet init()ed). */
export function pgStore(url: string, schema: string, daemonId: string, options: Partial<PgStoreOptions> = {}): PgStore {
  return new PgStore({ target: { url, schema }, paths: new HomePaths(os.tmpdir()), daemonId, ...options });
}
