// Events in PostgreSQL (DESIGN §10): rows of the `events` table, written by the store in
// the same statement as the checkpoint (or log batch) that made them, so a finished step and
// its step.finished event commit together: there is nothing to repair after a crash. Every
// daemon of the database reads them: events.list / events.subscribe / `atlas events` on any
// daemon show the whole cluster's events.
//
// Writers insert events without a seq; sequence_events() (migration 002) numbers committed
// ones under a row lock, so numbering is serialised and `seq > since` never skips an event
// whose transaction committed late. This log numbers and announces (onDurable) what is new
// right after its own writes (poke) and otherwise every `pollMs`, for other daemons' events.
import type { AtlasEvent, EventDraft, StepStart } from '../../events/event.js';
import { factOf } from '../../events/event.js';
import type { EventStore, EventStoreOptions } from '../../events/event-log.js';
import type { LogRecord } from '../task-log.js';
import type { Db } from './db.js';

const PAGE = 1000;

interface EventRow {
  seq: string;
  id: string;
  type: string;
  at: Date;
  task_id: string;
  workspace: string;
  data: string;
  daemon: string | null;
}

function toEvent(r: EventRow): AtlasEvent {
  return { seq: Number(r.seq), id: r.id, type: r.type as AtlasEvent['type'], at: r.at.toISOString(), task_id: r.task_id, workspace: r.workspace, data: JSON.parse(r.data) as Record<string, unknown> };
}

/** The step start a `step_started` log record reports (it becomes a step.started event). */
export function stepStartOf(record: LogRecord): StepStart | undefined {
  if (record.event !== 'step_started') return undefined;
  const r = record as Record<string, unknown>;
  if (typeof r['step_index'] !== 'number' || typeof r['attempt'] !== 'number') return undefined;
  return { step_index: r['step_index'], attempt: r['attempt'], at: new Date().toISOString() };
}

/** A step.started draft straight from its log record (for a log batch, which has no task record). */
export function startedDraft(id: string, workspace: string, record: LogRecord, at: string): EventDraft {
  const r = record as Record<string, unknown>;
  return {
    id: `${id}.s${String(r['step_index'])}.${String(r['attempt'])}`,
    type: 'step.started',
    task_id: id,
    workspace,
    data: { step: r['step'], step_index: r['step_index'], attempt: r['attempt'], type: r['type'], timestamp: at },
  };
}

/** The parameters of `eventsCte`: five arrays, one entry per draft. */
export function eventParams(drafts: readonly EventDraft[]): unknown[] {
  const kinds: string[] = [];
  const idx: number[] = [];
  for (const d of drafts) {
    const f = factOf(d.id);
    kinds.push(f?.kind ?? 's');
    idx.push(f?.index ?? 0);
  }
  return [drafts.map((d) => d.id), drafts.map((d) => d.type), kinds, idx, drafts.map((d) => JSON.stringify(d.data))];
}

/**
 * The CTE `ev` that inserts a write's events: rows of `up` (the task written), with `cur`
 * (its ev_t / ev_r before this statement) keeping only facts not yet recorded; a step start
 * or a fact already there (same id) is skipped by the id's uniqueness. `$p` is the
 * workspace, `$p+1..$p+5` the arrays of `eventParams`.
 */
export function eventsCte(p: number): string {
  return `ev AS (INSERT INTO events (id, type, task_id, workspace, data)
     SELECT d.id, d.type, up.id, $${p}, d.data
     FROM up, cur, unnest($${p + 1}::text[], $${p + 2}::text[], $${p + 3}::text[], $${p + 4}::int[], $${p + 5}::text[]) WITH ORDINALITY AS d(id, type, kind, idx, data, ord)
     WHERE d.kind = 's' OR (d.kind = 't' AND d.idx >= cur.ev_t) OR (d.kind = 'r' AND d.idx >= cur.ev_r)
     ORDER BY d.ord ON CONFLICT (id) DO NOTHING)`;
}

export interface PgEventLogOptions extends EventStoreOptions {
  /** How often events other daemons wrote are looked for (ms). */
  pollMs?: number;
}

export class PgEventLog implements EventStore {
  readonly transactional = true;
  onDurable: (events: AtlasEvent[]) => void = () => undefined;
  private announced = 0;
  private genesisAt = '';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private poked = false;
  private readonly writes = new Set<Promise<unknown>>();
  private readonly local = new WeakSet<AtlasEvent>();
  private readonly pollMs: number;
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly db: Db,
    options: PgEventLogOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 250;
    this.onError = options.onError ?? (() => undefined);
  }

  get lastSeq(): number {
    return this.announced;
  }
  get durableSeq(): number {
    return this.announced;
  }
  get genesis(): string {
    return this.genesisAt;
  }

  /** Events numbered before now are history (read()); later ones are announced as they come. */
  async open(): Promise<void> {
    const r = await this.db.query<{ last: string; genesis: Date }>('read the events clock', 'SELECT sequence_events() AS last, (SELECT genesis FROM event_clock) AS genesis');
    this.announced = Number(r.rows[0]?.last ?? 0);
    this.genesisAt = (r.rows[0]?.genesis ?? new Date()).toISOString();
    this.timer ??= setInterval(() => void this.poll().catch(() => undefined), this.pollMs);
    this.timer.unref();
  }

  /** Events not tied to a checkpoint (a deleted task): inserted now, numbered and announced shortly.
   *  The returned events carry seq 0: their seq is given when they are numbered. */
  append(drafts: readonly EventDraft[]): AtlasEvent[] {
    if (drafts.length === 0) return [];
    const at = new Date().toISOString();
    const write = this.db
      .query(
        'record events',
        `INSERT INTO events (id, type, task_id, workspace, data)
         SELECT d.id, d.type, d.task_id, d.workspace, d.data
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS d(id, type, task_id, workspace, data, ord)
         ORDER BY d.ord ON CONFLICT (id) DO NOTHING`,
        [drafts.map((d) => d.id), drafts.map((d) => d.type), drafts.map((d) => d.task_id), drafts.map((d) => d.workspace), drafts.map((d) => JSON.stringify(d.data))],
      )
      .then(() => this.poke(), this.onError);
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
    return drafts.map((d) => ({ ...d, seq: 0, at }));
  }

  /** A write with events just committed: number and announce them soon. */
  poke(): void {
    if (this.poked || this.timer === undefined) return;
    this.poked = true;
    setImmediate(() => {
      this.poked = false;
      void this.poll().catch(() => undefined);
    });
  }

  /** Resolves once every event committed before the call is numbered and announced. */
  async flush(): Promise<void> {
    await Promise.all([...this.writes]);
    await this.poll();
  }

  /** One pass that starts after the call: number what is committed, announce what is new. */
  private poll(): Promise<void> {
    if (!this.running) {
      this.running = this.pass().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.queued = undefined;
      return this.poll();
    });
    return this.queued;
  }

  private async pass(): Promise<void> {
    try {
      const last = Number((await this.db.query<{ last: string }>('number events', 'SELECT sequence_events() AS last')).rows[0]?.last ?? 0);
      while (this.announced < last) {
        const rows = await this.page(this.announced, last, PAGE);
        if (rows.length === 0) {
          this.announced = last; // pruned meanwhile
          break;
        }
        this.announced = rows.at(-1)!.seq;
        this.onDurable(rows);
      }
    } catch (err) {
      this.onError(err);
      throw err;
    }
  }

  private async page(since: number, upTo: number, limit: number): Promise<AtlasEvent[]> {
    const r = await this.db.query<EventRow>(
      'read events',
      'SELECT seq, id, type, at, task_id, workspace, data, daemon FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3',
      [since, upTo, limit],
    );
    return r.rows.map((row) => this.toLocal(row));
  }

  private toLocal(row: EventRow): AtlasEvent {
    const e = toEvent(row);
    if (row.daemon === this.db.daemonId) this.local.add(e);
    return e;
  }

  /** Whether this daemon wrote the event (its webhooks deliver only those). */
  isLocal(e: AtlasEvent): boolean {
    return this.local.has(e);
  }

  async read(since: number, limit: number, filter?: (e: AtlasEvent) => boolean): Promise<AtlasEvent[]> {
    const out: AtlasEvent[] = [];
    let cursor = since;
    while (out.length < limit && cursor < this.announced) {
      const rows = await this.page(cursor, this.announced, filter ? PAGE : Math.min(PAGE, limit - out.length));
      if (rows.length === 0) break;
      for (const e of rows) {
        cursor = e.seq;
        if (filter && !filter(e)) continue;
        out.push(e);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async *readBackward(): AsyncIterable<AtlasEvent[]> {
    let before = this.announced + 1;
    for (;;) {
      const r = await this.db.query<EventRow>('read events', 'SELECT seq, id, type, at, task_id, workspace, data, daemon FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT $2', [before, PAGE]);
      if (r.rows.length === 0) return;
      const chunk = r.rows.map((row) => this.toLocal(row));
      before = chunk.at(-1)!.seq;
      yield chunk;
    }
  }

  async pruneBefore(seq: number): Promise<number> {
    const r = await this.db.query('prune events', 'DELETE FROM events WHERE seq < $1', [seq]);
    return r.rowCount ?? 0;
  }

  async oldestSeq(): Promise<number> {
    const r = await this.db.query<{ first: string | null }>('read the oldest event', 'SELECT min(seq) AS first FROM events WHERE seq IS NOT NULL');
    const first = r.rows[0]?.first;
    return first === null || first === undefined ? this.durableSeq + 1 : Number(first);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush().catch(() => undefined);
  }
}
