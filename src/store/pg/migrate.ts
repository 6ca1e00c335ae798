// Schema migrations for the PostgreSQL store. Numbered SQL files (NNN_name.sql) ship with the
// package (copied to dist/migrations by the build); at start each one not yet recorded in
// the `migrations` table is applied in its own transaction, all under one advisory lock, so
// several daemons starting at once apply each migration exactly once. A database whose
// schema is newer than the highest migration this code knows is refused, never touched.
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { AtlasError } from '../../errors.js';
import { packageRoot } from '../../util/package-root.js';
import { quoteIdent } from './connect.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrateResult {
  applied: number[];
  version: number;
}

/** Where the SQL files are: dist/migrations (what the build ships), else the source tree. */
export function migrationsDir(): string {
  const root = packageRoot();
  for (const dir of [path.join(root, 'dist', 'migrations'), path.join(root, 'src', 'store', 'pg', 'migrations')]) {
    if (fs.existsSync(dir)) return dir;
  }
  throw new AtlasError('internal', `the PostgreSQL migrations are missing from ${root} (expected dist/migrations); rebuild atlas`);
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  const out: Migration[] = [];
  for (const file of fs.readdirSync(dir).sort()) {
    const m = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) continue;
    out.push({ version: Number(m[1]), name: m[2]!, sql: fs.readFileSync(path.join(dir, file), 'utf8') });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new AtlasError('internal', `migration ${m.version}_${m.name} is out of sequence (expected ${i + 1})`);
  });
  return out;
}

/** The advisory lock key that serialises migrations of one schema. */
function lockKey(schema: string): string {
  return `atlas-migrate:${schema}`;
}

/** Applies the migrations not yet applied; refuses a schema newer than `migrations`. */
export async function migrate(client: pg.ClientBase, schema: string, migrations: Migration[] = loadMigrations()): Promise<MigrateResult> {
  const known = migrations.at(-1)?.version ?? 0;
  const s = quoteIdent(schema);
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey(schema)]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${s}.migrations`)).rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    if (newest > known) {
      throw new AtlasError(
        'unsupported_schema',
        `the database schema ${schema} is at version ${newest}, newer than this atlas knows (${known}); upgrade atlas on this machine before starting it against this database`,
        { details: { schema, database_version: newest, known_version: known } },
      );
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL search_path TO ${s}`);
        await client.query(m.sql);
        await client.query(`INSERT INTO ${s}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new AtlasError('storage', `migration ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.version);
    }
    return { applied, version: known };
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey(schema)]).catch(() => undefined);
  }
}
