// What every part of the PostgreSQL store shares: the pool, who we are (daemon id), the
// leases this process holds (task id -> epoch), the log records not yet written, and a
// per-task write queue so a task's writes reach the database in the order they were made.
import type pg from 'pg';
import { AtlasError } from '../../errors.js';
import type { StepStart } from '../../events/event.js';
import type { LogRecord } from '../task-log.js';
import { pgError, type PgTarget } from './connect.js';

export interface LeaseLost {
  id: string;
  reason: string;
}

/** A step start logged and not yet written as a step.started event. */
export interface PendingStart {
  start: StepStart;
  record: LogRecord;
  workspace: string;
}

export class Db {
  /** task id -> the lease epoch this process holds. */
  readonly leases = new Map<string, number>();
  /** task id -> JSON lines appended and not yet written. */
  readonly pendingLogs = new Map<string, string[]>();
  /** task id -> step starts logged and not yet written as step.started events. */
  readonly pendingStarts = new Map<string, PendingStart[]>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly lostListeners = new Set<(l: LeaseLost) => void>();

  constructor(
    readonly pool: pg.Pool,
    readonly target: PgTarget,
    readonly daemonId: string,
    readonly ttlMs: number,
  ) {}

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (err) {
      throw this.wrap(what, err);
    }
  }

  /** Runs `fn` in one transaction on one client. */
  async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.wrap(what, err);
    }
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.wrap(what, err);
    } finally {
      client.release();
    }
  }

  wrap(what: string, err: unknown): AtlasError {
    if (err instanceof AtlasError) return err;
    return pgError(what, this.target, err);
  }

  /** Runs `fn` after every earlier write of task `id` made by this process. */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  takeLogs(id: string): string[] {
    const lines = this.pendingLogs.get(id) ?? [];
    this.pendingLogs.delete(id);
    return lines;
  }

  /** Puts lines back at the front (a write that failed for a reason other than a lost lease). */
  restoreLogs(id: string, lines: string[]): void {
    if (lines.length === 0) return;
    this.pendingLogs.set(id, [...lines, ...(this.pendingLogs.get(id) ?? [])]);
  }

  takeStarts(id: string): PendingStart[] {
    const starts = this.pendingStarts.get(id) ?? [];
    this.pendingStarts.delete(id);
    return starts;
  }

  restoreStarts(id: string, starts: PendingStart[]): void {
    if (starts.length === 0) return;
    this.pendingStarts.set(id, [...starts, ...(this.pendingStarts.get(id) ?? [])]);
  }

  onLeaseLost(fn: (l: LeaseLost) => void): () => void {
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  /** Forgets a lease that is no longer ours and tells whoever runs the task. */
  leaseLost(id: string, reason: string): AtlasError {
    const held = this.leases.delete(id);
    this.pendingLogs.delete(id);
    this.pendingStarts.delete(id);
    if (held) for (const fn of this.lostListeners) fn({ id, reason });
    return new AtlasError('lease_lost', `task ${id}: this daemon no longer holds its lease (${reason}); it writes nothing more for it`, { details: { id, reason } });
  }

  /** The SQL condition and parameters that fence a write to task `id` (param numbers from `n`). */
  fence(id: string, n: number): { sql: string; params: unknown[] } {
    const epoch = this.leases.get(id);
    if (epoch === undefined) return { sql: 'TRUE', params: [] };
    return { sql: `owner = $${n} AND lease_epoch = $${n + 1}`, params: [this.daemonId, epoch] };
  }
}
