// The daemon's methods for keeping history (DESIGN §14): backups, prune, unarchive, and the
// archived-task fallbacks of show, logs, artifacts and list (an id that is not live is looked
// up among the archives, so callers need not know where a task went). Kept apart from
// handlers.ts, which spreads these in and passes its table through withArchive().
//
// At start the archives are reconciled with the live tasks (archive.ts: a move a crash cut
// off is finished or undone) before any of these methods answers; then `retention:` from
// config.yaml is applied shortly after the start and every `every` (a day by default).
import { AtlasError, isAtlasError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { prune, pruneEvents } from '../engine/prune.js';
import type { LogsResult } from '../protocol/methods.js';
import type { ArchivedTask, TaskArchives } from '../store/archive-format.js';
import { assertName, assertTaskId } from '../store/names.js';
import type { LogRecord } from '../store/task-log.js';
import { runQuery, type QueryPage, type TaskQuery } from '../store/task-query.js';
import { idSortKey } from '../store/task-ids.js';
import { parseDuration } from '../templates/schema.js';
import { createBackup } from './backup-handler.js';
import type { Handlers } from './rpc-server.js';

type HistoryMethods = 'backup.create' | 'task.prune' | 'task.unarchive';

/** Delay before the first retention run after a start (ATLAS_RETENTION_DELAY_MS for tests). */
const FIRST_RUN_MS = Number(process.env['ATLAS_RETENTION_DELAY_MS'] ?? 60_000);

export class History {
  readonly archive: TaskArchives;
  readonly ready: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private pruning: Promise<unknown> = Promise.resolve();
  readonly busy: { backup?: boolean } = {};

  constructor(private readonly engine: Engine) {
    const archive = engine.store.openArchive();
    this.archive = archive;
    this.ready = (async () => {
      const r = await archive.reconcile();
      if (r.archives_removed.length || r.leftovers_removed.length) {
        engine.log?.info({ archive_reconcile: r }, `archives: finished ${r.leftovers_removed.length} cut-off move(s), undid ${r.archives_removed.length}`);
      }
    })().catch((err: unknown) => engine.log?.error({ err: (err as Error).message }, `could not reconcile the archives: ${(err as Error).message}`));
    this.schedule(FIRST_RUN_MS);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.applyRetention().finally(() => this.schedule(this.engine.config.retention?.every_ms ?? 86_400_000)), ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** One pass of `retention:` (nothing when it is not configured). */
  async applyRetention(): Promise<void> {
    const r = this.engine.config.retention;
    if (!r || this.engine.lifecycle !== 'running') return;
    try {
      await this.run(() => prune(this.engine, this.archive, { older_than_ms: r.older_than_ms, statuses: r.statuses, delete: r.delete }));
      if (r.events_older_than_ms !== null) {
        const removed = await pruneEvents(this.engine, r.events_older_than_ms);
        if (removed) this.engine.log?.info({ events_segments_removed: removed }, `retention: removed ${removed} events-log segment(s)`);
      }
    } catch (err) {
      this.engine.log?.warn({ err: (err as Error).message }, `retention: ${(err as Error).message}`);
    }
  }

  /** One prune at a time (the CLI's and retention's). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.pruning.then(async () => {
      await this.ready;
      return fn();
    });
    this.pruning = next.catch(() => undefined);
    return next;
  }

  /** The archived task `id`, or rethrows `notFound` when it is not archived either. */
  async archived(id: string, notFound: unknown): Promise<ArchivedTask> {
    if (!isAtlasError(notFound, 'not_found')) throw notFound;
    await this.ready;
    if (!(await this.archive.has(assertTaskId(id)))) throw notFound;
    return this.archive.read(id);
  }

  async query(q: TaskQuery): Promise<QueryPage> {
    await this.ready;
    const all = await this.archive.list();
    const ordered = all.map((summary) => ({ summary, key: idSortKey(summary.id) })).sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    return runQuery(ordered, q);
  }
}

export function historyHandlers(engine: Engine, history: History): Pick<Handlers, HistoryMethods> {
  return {
    'backup.create': async (_p, conn) => createBackup(engine, conn, history.busy),
    'task.prune': async (p) => {
      const older = p.older_than ?? '30d';
      const ms = parseDuration(older);
      if (ms === undefined) throw new AtlasError('invalid_input', `--older-than expects a duration such as 30d, 12h or 90m, got ${JSON.stringify(older)}`);
      if (p.workspace !== undefined) assertName('workspace', p.workspace);
      return history.run(() =>
        prune(engine, history.archive, {
          older_than_ms: ms,
          ...(p.status ? { statuses: p.status } : {}),
          ...(p.workspace !== undefined ? { workspace: p.workspace } : {}),
          dry_run: p.dry_run ?? false,
          delete: p.delete ?? false,
          force: p.force ?? false,
        }),
      );
    },
    'task.unarchive': async ({ id }) => {
      assertTaskId(id);
      return history.run(async () => {
        const task = await history.archive.unarchive(id);
        if (!history.archive.writesEvents) engine.events.moved('task.unarchived', task, new Date().toISOString());
        await engine.events.store.flush().catch(() => undefined);
        const now = await engine.getTask(id);
        engine.index.put(now);
        engine.log?.info({ unarchived: id }, `unarchived task ${id}`);
        return now ?? task;
      });
    },
  };
}

/** The table with show, logs, artifacts and list reading archived tasks too. */
export function withArchive(history: History, h: Handlers): Handlers {
  return {
    ...h,
    'task.get': async (p, conn) => {
      try {
        return await h['task.get'](p, conn);
      } catch (err) {
        const a = await history.archived(p.id, err);
        return { ...a.task, archived_at: a.summary.archived_at };
      }
    },
    'task.artifacts': async (p, conn) => {
      try {
        return await h['task.artifacts'](p, conn);
      } catch (err) {
        const a = await history.archived(p.id, err);
        return [...a.artifacts].map(([name, x]) => ({ name, size: x.data.length, modified_at: x.modified_at })).sort((x, y) => x.name.localeCompare(y.name, 'en', { numeric: true }));
      }
    },
    'task.artifact': async (p, conn) => {
      try {
        return await h['task.artifact'](p, conn);
      } catch (err) {
        const a = await history.archived(p.id, err);
        const art = a.artifacts.get(assertName('artifact', p.name));
        if (!art) throw new AtlasError('not_found', `task ${p.id} has no artifact ${p.name}`, { details: { id: p.id, name: p.name } });
        const text = art.data.toString('utf8');
        const isText = Buffer.from(text, 'utf8').equals(art.data);
        return { name: p.name, size: art.data.length, encoding: isText ? 'utf8' : 'base64', content: isText ? text : art.data.toString('base64') };
      }
    },
    'task.logs': async (p, conn) => {
      try {
        return await h['task.logs'](p, conn);
      } catch (err) {
        return archivedLogs(await history.archived(p.id, err), p);
      }
    },
    'task.list': async (p, conn) => (p.archived ? (await history.query(p)).tasks : h['task.list'](withoutArchived(p), conn)),
    'task.query': async (p, conn) => (p.archived ? history.query(p) : h['task.query'](withoutArchived(p), conn)),
  };
}

function withoutArchived<Q extends { archived?: boolean | undefined }>(q: Q): Q {
  const { archived: _, ...rest } = q;
  return rest as Q;
}

/** A page of an archived task's log: positions are record numbers. */
function archivedLogs(a: ArchivedTask, p: { id: string; step?: string | undefined; tail?: number | undefined; offset?: number | undefined; limit?: number | undefined }): LogsResult {
  let skipped = 0;
  const all: LogRecord[] = [];
  for (const line of a.log.toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as LogRecord;
      if (p.step === undefined || r['step'] === p.step || r['step_name'] === p.step) all.push(r);
    } catch {
      skipped++;
    }
  }
  if (p.step !== undefined && !a.task.steps.some((s) => s.name === p.step)) {
    throw new AtlasError('not_found', `task ${a.task.id} has no step ${p.step}; its steps: ${a.task.steps.map((s) => s.name).join(', ')}`);
  }
  let start = p.offset ?? 0;
  if (p.tail !== undefined && p.offset === undefined) start = Math.max(0, all.length - p.tail);
  const limit = Math.min(p.limit ?? 5000, 5000);
  const records = all.slice(start, start + limit);
  const next = start + records.length;
  return { id: a.task.id, task: a.summary, records, skipped_lines: skipped, follow: false, next_offset: next, more: next < all.length };
}
