// A task's artifacts in PostgreSQL: one row each. A versioned artifact takes the next free
// number with an insert that fails on a taken name (the loser moves on to the next number),
// so racing writers never overwrite each other. Writes by a daemon that runs the task are
// fenced by its lease like every other write.
import { AtlasError } from '../../errors.js';
import { assertName } from '../names.js';
import type { ArtifactInfo, ArtifactStream, StoreArtifacts } from '../store.js';
import type { Db } from './db.js';

export class PgArtifacts implements StoreArtifacts {
  constructor(
    private readonly db: Db,
    private readonly taskId: string,
  ) {}

  async save(name: string, data: string | Uint8Array): Promise<string> {
    assertName('artifact', name);
    const fence = this.db.fence(this.taskId, 4);
    const r = await this.db.query(
      'save an artifact',
      `INSERT INTO artifacts (task_id, name, data) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND ${fence.sql})
       ON CONFLICT (task_id, name) DO UPDATE SET data = EXCLUDED.data, modified_at = now(), base = NULL, ext = NULL, version = NULL`,
      [this.taskId, name, toBuffer(data), ...fence.params],
    );
    if (r.rowCount === 0) throw await this.refused();
    return name;
  }

  async saveVersioned(base: string, ext: string, data: string | Uint8Array): Promise<string> {
    assertName('artifact', `${base}${ext}`);
    assertName('artifact', `${base}.1${ext}`);
    return this.insertVersion(base, ext, 1, toBuffer(data));
  }

  /** Inserts `<base>.<n><ext>` at the first free n >= from (and above every stored version). */
  private async insertVersion(base: string, ext: string, from: number, buf: Buffer): Promise<string> {
    const top = await this.db.query<{ v: number | null }>('list artifacts', 'SELECT max(version) AS v FROM artifacts WHERE task_id = $1 AND base = $2 AND ext = $3', [this.taskId, base, ext]);
    let n = Math.max(from, (top.rows[0]?.v ?? 0) + 1);
    for (;;) {
      const name = assertName('artifact', `${base}.${n}${ext}`);
      const fence = this.db.fence(this.taskId, 7);
      const r = await this.db.query<{ name: string }>(
        'save an artifact',
        `WITH ok AS (SELECT 1 FROM tasks WHERE id = $1 AND ${fence.sql}),
         ins AS (INSERT INTO artifacts (task_id, name, base, ext, version, data) SELECT $1, $2, $3, $4, $5, $6 FROM ok ON CONFLICT DO NOTHING RETURNING name)
         SELECT (SELECT count(*) FROM ok) AS ok, (SELECT name FROM ins) AS name`,
        [this.taskId, name, base, ext, n, buf, ...fence.params],
      );
      const row = r.rows[0] as { ok: string; name: string | null } | undefined;
      if (!row || Number(row.ok) === 0) throw await this.refused();
      if (row.name) return row.name;
      n++;
    }
  }

  openStream(base: string, ext: string, from: number): ArtifactStream {
    return new PgArtifactStream((buf) => this.insertVersion(base, ext, from, buf));
  }

  async get(name: string): Promise<Buffer> {
    assertName('artifact', name);
    const r = await this.db.query<{ data: Buffer }>('read an artifact', 'SELECT data FROM artifacts WHERE task_id = $1 AND name = $2', [this.taskId, name]);
    const row = r.rows[0];
    if (!row) throw new AtlasError('not_found', `no artifact ${name}; 'atlas artifacts <task-id>' lists them`, { details: { name } });
    return row.data;
  }

  async list(): Promise<ArtifactInfo[]> {
    const r = await this.db.query<{ name: string; size: number; modified_at: Date }>(
      'list artifacts',
      'SELECT name, octet_length(data) AS size, modified_at FROM artifacts WHERE task_id = $1',
      [this.taskId],
    );
    return r.rows
      .map((x) => ({ name: x.name, size: Number(x.size), modified_at: new Date(x.modified_at).toISOString() }))
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  }

  /** Why a write for this task matched no row: the task is gone, or our lease on it is. */
  private async refused(): Promise<AtlasError> {
    const r = await this.db.query<{ owner: string | null; lease_epoch: string }>('read a task', 'SELECT owner, lease_epoch FROM tasks WHERE id = $1', [this.taskId]);
    const row = r.rows[0];
    if (!row) return new AtlasError('not_found', `no task ${this.taskId}`, { details: { id: this.taskId } });
    return this.db.leaseLost(this.taskId, row.owner ? `daemon ${row.owner} holds it now (epoch ${row.lease_epoch})` : 'its lease expired');
  }
}

/** A step's output: kept in memory (it is capped by output_cap) and written in one insert at the end. */
class PgArtifactStream implements ArtifactStream {
  private chunks: Buffer[] = [];
  private closed = false;
  name: string | undefined;

  constructor(private readonly insert: (buf: Buffer) => Promise<string>) {}

  write(text: string): void {
    if (this.closed) throw new AtlasError('storage', 'the output artifact is closed');
    this.chunks.push(Buffer.from(text, 'utf8'));
  }

  async finish(): Promise<string | undefined> {
    if (this.closed || this.chunks.length === 0) return undefined;
    this.closed = true;
    const buf = Buffer.concat(this.chunks);
    this.chunks = [];
    this.name = await this.insert(buf);
    return this.name;
  }

  close(): void {
    this.closed = true;
    this.chunks = [];
  }
}

function toBuffer(data: string | Uint8Array): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
}
