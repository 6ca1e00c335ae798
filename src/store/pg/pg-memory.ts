// Workspace memory in PostgreSQL (the contract is in ../memory.ts): one row per entry, ids
// from a sequence (never reused), an idempotency key unique across the table.
import type { MemoryEntry, MemoryKind, NewMemoryEntry, StoreMemory } from '../memory.js';
import { memoryNotFound } from '../memory.js';
import type { Db } from './db.js';

interface Row {
  id: string;
  workspace: string;
  kind: string;
  text: string;
  source: string;
  created_at: Date;
}

const COLUMNS = 'id, workspace, kind, text, source, created_at';

function entryOf(r: Row): MemoryEntry {
  return { id: String(r.id), workspace: r.workspace, kind: r.kind as MemoryKind, text: r.text, source: r.source, created_at: new Date(r.created_at).toISOString() };
}

export class PgMemory implements StoreMemory {
  constructor(private readonly db: Db) {}

  async add(workspace: string, e: NewMemoryEntry): Promise<MemoryEntry> {
    const r = await this.db.query<Row>(
      'add a memory entry',
      `INSERT INTO memory (workspace, kind, text, source, key) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING RETURNING ${COLUMNS}`,
      [workspace, e.kind, e.text, e.source, e.key ?? null],
    );
    if (r.rows[0]) return entryOf(r.rows[0]);
    // The key was taken: the entry added under it the first time.
    const again = await this.db.query<Row>('read a memory entry', `SELECT ${COLUMNS} FROM memory WHERE key = $1`, [e.key ?? null]);
    return entryOf(again.rows[0]!);
  }

  async list(workspace: string): Promise<MemoryEntry[]> {
    const r = await this.db.query<Row>('list memory', `SELECT ${COLUMNS} FROM memory WHERE workspace = $1 ORDER BY id`, [workspace]);
    return r.rows.map(entryOf);
  }

  async remove(workspace: string, id: string): Promise<MemoryEntry> {
    const r = await this.db.query<Row>('remove a memory entry', `DELETE FROM memory WHERE workspace = $1 AND id = $2 RETURNING ${COLUMNS}`, [workspace, id]);
    if (!r.rows[0]) throw memoryNotFound(workspace, id);
    return entryOf(r.rows[0]);
  }
}
