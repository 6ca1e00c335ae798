// Workspaces in PostgreSQL: the record as workspace.json would hold it, and the daemon that
// made it (a --path workspace runs only where its directory is).
import { AtlasError } from '../../errors.js';
import { assertName } from '../names.js';
import { SCHEMA_VERSION, type WorkspaceRecord } from '../records.js';
import type { StoreWorkspaces } from '../store.js';
import type { Db } from './db.js';

export class PgWorkspaces implements StoreWorkspaces {
  constructor(private readonly db: Db) {}

  async create(input: Omit<WorkspaceRecord, 'schema_version' | 'created_at'>): Promise<WorkspaceRecord> {
    assertName('workspace', input.name);
    const rec: WorkspaceRecord = { schema_version: SCHEMA_VERSION, ...input, created_at: new Date().toISOString() };
    const r = await this.db.query('create a workspace', 'INSERT INTO workspaces (name, record, created_by) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [
      input.name,
      JSON.stringify(rec, null, 2),
      this.db.daemonId,
    ]);
    if (r.rowCount === 0) {
      throw new AtlasError('already_exists', `workspace ${input.name} already exists; 'atlas workspace show ${input.name}' shows it`, { details: { name: input.name } });
    }
    return rec;
  }

  async get(name: string): Promise<WorkspaceRecord> {
    assertName('workspace', name);
    const r = await this.db.query<{ record: string }>('read a workspace', 'SELECT record FROM workspaces WHERE name = $1', [name]);
    const row = r.rows[0];
    if (!row) throw new AtlasError('not_found', `no workspace ${name}; create it with 'atlas workspace create ${name} --path DIR'`, { details: { name } });
    return parse(name, row.record);
  }

  async list(): Promise<WorkspaceRecord[]> {
    const r = await this.db.query<{ name: string; record: string }>('list workspaces', 'SELECT name, record FROM workspaces ORDER BY name');
    const out: WorkspaceRecord[] = [];
    for (const row of r.rows) {
      try {
        out.push(parse(row.name, row.record));
      } catch {
        // an unreadable record is not listed (as with the fs store)
      }
    }
    return out;
  }

  /** Who can run each workspace: the daemon that made it, and whether it runs on any daemon
   *  (a --repo workspace: each daemon makes its own copy). */
  async reach(): Promise<Array<{ name: string; created_by: string | null; anywhere: boolean }>> {
    const r = await this.db.query<{ name: string; created_by: string | null; record: string }>('list workspaces', 'SELECT name, created_by, record FROM workspaces');
    return r.rows.map((x) => {
      let anywhere = false;
      try {
        const rec = parse(x.name, x.record);
        anywhere = rec.kind === 'worktree' && typeof rec.repo === 'string';
      } catch {
        // an unreadable record: only its maker runs it
      }
      return { name: x.name, created_by: x.created_by, anywhere };
    });
  }

  async remove(name: string, purge: boolean): Promise<void> {
    await this.get(name);
    await this.db.tx('remove a workspace', async (c) => {
      await c.query('DELETE FROM workspaces WHERE name = $1', [name]);
      if (purge) {
        await c.query('DELETE FROM tasks WHERE workspace = $1', [name]);
        await c.query('DELETE FROM memory WHERE workspace = $1', [name]);
      }
    });
  }
}

function parse(name: string, text: string): WorkspaceRecord {
  try {
    return JSON.parse(text) as WorkspaceRecord;
  } catch (err) {
    throw new AtlasError('corrupt', `the record of workspace ${name} in the database is not valid JSON`, { details: { name }, cause: err });
  }
}
