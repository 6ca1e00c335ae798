// Backups of the PostgreSQL store (DESIGN §14): the rows of every atlas table in the same
// checksummed tar.gz format as a filesystem backup (../tgz.ts), the manifest saying
// `store: postgres`. Made by a daemon while the cluster runs; restored by the CLI.
//
// Consistency: every table is read in one REPEATABLE READ, READ ONLY transaction, so the
// backup is one snapshot of the database: a checkpoint and the log records, events and
// artifacts it wrote commit together, and the snapshot holds all of them or none. Sequences
// are not transactional: their values are read after the rows, so they are at least what the
// rows used. Left out: `daemons` (who is alive now) and `migrations` (the manifest names the
// schema version).
//
// Layout: pg/schema.json (version, tables in load order), then pg/<table>/<n>.jsonl (one
// row_to_json per line, at most ~4 MiB per entry), then pg/sequences.json.
//
// Restore runs in one transaction, so a failure part way leaves the database as it was: it
// takes the migration lock, refuses a schema that holds tasks or workspaces (unless forced:
// that schema is then renamed aside, never dropped), builds the schema up to the backup's
// version with the shipped migrations, loads the rows, sets the sequences, then applies the
// migrations the backup predates. Tasks come back with no lease and no process record for a
// step that was running (its processes belong to the daemons of the original database), so
// the daemons of the restored database take them over and run those steps again, as after a
// crash.
import type pg from 'pg';
import { AtlasError } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { TgzEntry, TgzWriter } from '../tgz.js';
import { forgetProcesses } from '../backup.js';
import { clientFor, describeTarget, pgError, quoteIdent, type PgTarget } from './connect.js';
import { loadMigrations, type Migration } from './migrate.js';

/** Tables that are not data: who is alive, and the schema's own bookkeeping. */
const SKIPPED = new Set(['daemons', 'migrations']);
const CHUNK_BYTES = 4 * 1024 * 1024;
const FETCH_ROWS = 2000;

export interface PgBackupSummary {
  schema_version: number;
  tables: Record<string, number>;
  files: number;
  tasks: number;
  bytes_in: number;
}

/** Tables of `schema` in an order that loads: a table after every table it references. */
async function tablesInLoadOrder(c: pg.ClientBase, schema: string): Promise<string[]> {
  const names = (await c.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`, [schema])).rows
    .map((r) => r.t)
    .filter((t) => !SKIPPED.has(t));
  const refs = (
    await c.query<{ child: string; parent: string }>(
      `SELECT cl.relname AS child, pl.relname AS parent FROM pg_constraint k
       JOIN pg_class cl ON cl.oid = k.conrelid JOIN pg_class pl ON pl.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = cl.relnamespace
       WHERE k.contype = 'f' AND n.nspname = $1`,
      [schema],
    )
  ).rows;
  const out: string[] = [];
  const left = new Set(names);
  while (left.size) {
    const ready = [...left].filter((t) => refs.every((r) => r.child !== t || r.parent === t || !left.has(r.parent)));
    if (ready.length === 0) throw new AtlasError('internal', `the tables of schema ${schema} reference each other in a cycle (${[...left].join(', ')}); cannot order them`);
    for (const t of ready) {
      out.push(t);
      left.delete(t);
    }
  }
  return out;
}

/** Streams one snapshot of `target`'s atlas schema into `writer`; the caller finishes it. */
export async function writePgBackup(pool: pg.Pool, target: PgTarget, writer: TgzWriter): Promise<PgBackupSummary> {
  const schema = target.schema;
  const s = quoteIdent(schema);
  const sum: PgBackupSummary = { schema_version: 0, tables: {}, files: 0, tasks: 0, bytes_in: 0 };
  const add = async (name: string, data: Buffer) => {
    await writer.add(name, data);
    sum.files++;
    sum.bytes_in += data.length;
  };
  let c: pg.PoolClient;
  try {
    c = await pool.connect();
  } catch (err) {
    throw pgError('connect for a backup', target, err);
  }
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    sum.schema_version = Number((await c.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.migrations`)).rows[0]?.v ?? 0);
    const tables = await tablesInLoadOrder(c, schema);
    await add('pg/schema.json', Buffer.from(JSON.stringify({ schema, schema_version: sum.schema_version, tables }, null, 1)));
    for (const t of tables) {
      let rows = 0;
      let part = 0;
      let lines: string[] = [];
      let size = 0;
      const flush = async () => {
        if (!lines.length) return;
        await add(`pg/${t}/${String(++part).padStart(5, '0')}.jsonl`, Buffer.from(lines.join('\n') + '\n'));
        lines = [];
        size = 0;
      };
      await c.query(`DECLARE atlas_backup NO SCROLL CURSOR FOR SELECT row_to_json(r)::text AS j FROM ${s}.${quoteIdent(t)} r`);
      for (;;) {
        const batch = (await c.query<{ j: string }>(`FETCH ${FETCH_ROWS} FROM atlas_backup`)).rows;
        for (const r of batch) {
          lines.push(r.j);
          size += r.j.length + 1;
          rows++;
          if (size >= CHUNK_BYTES) await flush();
        }
        if (batch.length < FETCH_ROWS) break;
      }
      await c.query('CLOSE atlas_backup');
      await flush();
      sum.tables[t] = rows;
    }
    sum.tasks = sum.tables['tasks'] ?? 0;
    const seqs = (await c.query<{ name: string; value: string | null }>(`SELECT sequencename AS name, last_value::text AS value FROM pg_sequences WHERE schemaname = $1 ORDER BY 1`, [schema])).rows;
    await add('pg/sequences.json', Buffer.from(JSON.stringify(Object.fromEntries(seqs.filter((q) => q.value !== null).map((q) => [q.name, q.value])), null, 1)));
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err instanceof AtlasError ? err : pgError('read the database for a backup', target, err);
  } finally {
    c.release();
  }
  return sum;
}

export function pgBackupAbout(target: PgTarget, sum: PgBackupSummary): Record<string, unknown> {
  return { store: 'postgres', server: describeTarget(target.url), schema: target.schema, schema_version: sum.schema_version, atlas_version: VERSION, tasks: sum.tasks, tables: sum.tables, files: sum.files, bytes: sum.bytes_in };
}

export interface PgRestoreResult {
  server: string;
  schema: string;
  tasks: number;
  rows: number;
  /** With --force, the schema that was there before, renamed. */
  moved_aside: string | null;
  backup_created_at: string;
  /** Tasks whose running step will run again (it was running at backup time). */
  rerun: string[];
}

/** Restores a verified PostgreSQL backup into `target` (see the top of this file). `read`
 *  streams the file's entries in order. */
export async function restorePgBackup(
  target: PgTarget,
  backup: { created_at: string; about: Record<string, unknown> },
  read: (onEntry: (e: TgzEntry) => Promise<void>) => Promise<unknown>,
  options: { force?: boolean; migrations?: Migration[] } = {},
): Promise<PgRestoreResult> {
  const migrations = options.migrations ?? loadMigrations();
  const known = migrations.at(-1)?.version ?? 0;
  const version = Number(backup.about['schema_version'] ?? 0);
  if (!Number.isInteger(version) || version < 1) throw new AtlasError('corrupt', 'the backup does not say which schema version it holds; it was not made by atlas backup of a PostgreSQL store');
  if (version > known) {
    throw new AtlasError('unsupported_schema', `the backup holds schema version ${version}, newer than this atlas knows (${known}); restore it with the atlas that made it (${String(backup.about['atlas_version'] ?? '?')}) or a newer one`);
  }
  const schema = target.schema;
  const s = quoteIdent(schema);
  const c = clientFor(target, { application: 'atlas restore' });
  try {
    await c.connect();
  } catch (err) {
    throw pgError('connect for a restore', target, err);
  }
  let movedAside: string | null = null;
  const rerun: string[] = [];
  let rows = 0;
  let tasks = 0;
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`atlas-migrate:${schema}`]);
    if (await schemaExists(c, schema)) {
      const held = await dataIn(c, schema);
      if (held.length && !options.force) {
        throw new AtlasError('not_allowed', `schema ${schema} at ${describeTarget(target.url)} is not empty (${held.join(', ')}); restore into an empty database or another store_schema, or pass --force to rename this one aside first`, {
          details: { schema, held },
        });
      }
      if (held.length) {
        const live = await liveDaemons(c, schema);
        if (live.length) throw new AtlasError('not_allowed', `daemons still use schema ${schema} (${live.join(', ')}); stop them first ('atlas daemon stop' on each), then restore`, { details: { daemons: live } });
        movedAside = `${schema}_before_restore_${Date.now()}`.slice(0, 63);
        await c.query(`ALTER SCHEMA ${s} RENAME TO ${quoteIdent(movedAside)}`);
      } else {
        // Nothing in it but the shape: made again at the backup's version.
        await c.query(`DROP SCHEMA ${s} CASCADE`);
      }
    }
    await c.query(`CREATE SCHEMA ${s}`);
    await c.query(`SET LOCAL search_path TO ${s}`);
    await c.query(`CREATE TABLE ${s}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const apply = async (m: Migration) => {
      await c.query(m.sql);
      await c.query(`INSERT INTO ${s}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    };
    for (const m of migrations.filter((m) => m.version <= version)) await apply(m);
    const emptied = new Set<string>();
    let sequences: Record<string, string> = {};
    await read(async (e) => {
      if (e.name === 'pg/schema.json') return;
      if (e.name === 'pg/sequences.json') {
        sequences = JSON.parse(e.data.toString('utf8')) as Record<string, string>;
        return;
      }
      const m = /^pg\/([a-z_][a-z0-9_]*)\/\d+\.jsonl$/.exec(e.name);
      if (!m) throw new AtlasError('corrupt', `the backup holds ${e.name}, which is not a table of a PostgreSQL backup`);
      const table = m[1]!;
      const t = `${s}.${quoteIdent(table)}`;
      // A table a migration seeds (event_clock) holds the backup's rows instead.
      if (!emptied.has(table)) {
        await c.query(`DELETE FROM ${t}`);
        emptied.add(table);
      }
      let lines = e.data.toString('utf8').split('\n').filter(Boolean);
      if (table === 'tasks') lines = lines.map((l) => restoredTask(l, (id) => rerun.push(id)));
      await c.query(`INSERT INTO ${t} SELECT * FROM json_populate_recordset(NULL::${t}, $1::json)`, [`[${lines.join(',')}]`]);
      rows += lines.length;
      if (table === 'tasks') tasks += lines.length;
    });
    for (const [name, value] of Object.entries(sequences)) {
      await c.query('SELECT setval($1::regclass, $2::bigint, true)', [`${s}.${quoteIdent(name)}`, value]);
    }
    for (const m of migrations.filter((m) => m.version > version)) await apply(m);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err instanceof AtlasError ? err : pgError('restore the backup', target, err);
  } finally {
    await c.end().catch(() => undefined);
  }
  return { server: describeTarget(target.url), schema, tasks, rows, moved_aside: movedAside, backup_created_at: backup.created_at, rerun };
}

async function schemaExists(c: pg.ClientBase, schema: string): Promise<boolean> {
  return (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount !== 0;
}

/** The data tables of the schema that hold rows (tasks, workspaces, ...). */
async function dataIn(c: pg.ClientBase, schema: string): Promise<string[]> {
  const held: string[] = [];
  for (const t of ['tasks', 'archived_tasks', 'workspaces', 'schedules', 'memory', 'events']) {
    const exists = (await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [schema, t])).rowCount !== 0;
    if (!exists) continue;
    const n = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(schema)}.${quoteIdent(t)}`)).rows[0]?.n ?? 0);
    if (n > 0) held.push(`${n} ${t}`);
  }
  return held;
}

/** Daemons whose heartbeat is recent (they would keep writing into the schema). */
async function liveDaemons(c: pg.ClientBase, schema: string): Promise<string[]> {
  const exists = (await c.query(`SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'daemons'`, [schema])).rowCount !== 0;
  if (!exists) return [];
  const r = await c.query<{ id: string }>(`SELECT id FROM ${quoteIdent(schema)}.daemons WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '1 minute'`);
  return r.rows.map((x) => x.id);
}

/** A task row as restored: no lease, and no process record for a step that was running. */
function restoredTask(line: string, onRerun: (id: string) => void): string {
  const row = JSON.parse(line) as Record<string, unknown>;
  row['owner'] = null;
  row['lease_until'] = null;
  if (typeof row['data'] === 'string') {
    const before = row['data'];
    row['data'] = forgetProcesses(Buffer.from(before), () => onRerun(String(row['id']))).toString('utf8');
  }
  return JSON.stringify(row);
}
