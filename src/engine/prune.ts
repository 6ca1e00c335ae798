// `atlas prune` and `retention:` (DESIGN §14): finished tasks past their age are moved into
// per-task archives (store/archive-format.ts: files in the home, or rows of the database), or
// with --delete removed. Never a task that runs or waits: only the statuses in
// PRUNABLE_STATUSES are taken, a task a runner (or, on a shared store, any daemon) holds is
// skipped, and each task is archived under its lock, re-read there, so an approve, a resume
// or a delete racing the prune either happens first (and the task is skipped if it moved) or
// waits for the move. Each archived task is a task.archived event. A --delete prune is one purge for the destruction guard (refused past
// the limit without --force); every task it deletes is an event and a daemon.log line.
import { AtlasError, isAtlasError } from '../errors.js';
import { DEFAULT_PRUNE_STATUSES, PRUNABLE_STATUSES } from '../config/retention-config.js';
import type { TaskArchives } from '../store/archive-format.js';
import type { TaskStatus, TaskSummary } from '../store/records.js';
import { now } from '../util/clock.js';
import { deleteAdmitted } from './deletion.js';
import type { Engine } from './engine.js';

export interface PruneOptions {
  older_than_ms: number;
  statuses?: TaskStatus[];
  workspace?: string;
  dry_run?: boolean;
  delete?: boolean;
  force?: boolean;
}

export interface PruneResult {
  dry_run: boolean;
  action: 'archive' | 'delete';
  /** Tasks archived (or, dry run, that would be). */
  archived: string[];
  deleted: string[];
  skipped: Array<{ id: string; reason: string }>;
  /** Bytes of the archives written. */
  archive_bytes: number;
  events_segments_removed: number;
  duration_ms: number;
}

function ageOf(t: TaskSummary): number {
  return Date.parse(t.completed_at ?? t.updated_at);
}

/** The tasks a prune would take, oldest first. */
export function pruneCandidates(engine: Engine, o: PruneOptions, now = Date.now()): TaskSummary[] {
  const statuses = new Set(o.statuses?.length ? o.statuses : DEFAULT_PRUNE_STATUSES);
  for (const s of statuses) {
    if (!(PRUNABLE_STATUSES as readonly string[]).includes(s)) {
      throw new AtlasError('invalid_input', `a ${s} task is never pruned (it runs or waits); --status takes ${PRUNABLE_STATUSES.join(', ')}`, { details: { status: s } });
    }
  }
  const cutoff = now - o.older_than_ms;
  return engine.index
    .list(o.workspace !== undefined ? { workspace: o.workspace } : {})
    .filter((t) => statuses.has(t.status) && ageOf(t) <= cutoff)
    .sort((a, b) => ageOf(a) - ageOf(b));
}

export async function prune(engine: Engine, archive: TaskArchives, o: PruneOptions): Promise<PruneResult> {
  const started = performance.now();
  const del = o.delete === true;
  const candidates = pruneCandidates(engine, o);
  const result: PruneResult = { dry_run: o.dry_run === true, action: del ? 'delete' : 'archive', archived: [], deleted: [], skipped: [], archive_bytes: 0, events_segments_removed: 0, duration_ms: 0 };
  if (o.dry_run) {
    for (const t of candidates) (del ? result.deleted : result.archived).push(t.id);
    result.duration_ms = Math.round(performance.now() - started);
    return result;
  }
  const giveBack = del && candidates.length > 0 ? engine.guard.admit(`${candidates.length} task(s) by prune --delete`, o.force === true) : undefined;
  const statuses = new Set(candidates.map((t) => t.status));
  for (const t of candidates) {
    if (engine.lifecycle !== 'running') break;
    if (engine.activeTaskIds.includes(t.id)) {
      result.skipped.push({ id: t.id, reason: 'a runner holds it' });
      continue;
    }
    try {
      if (del) {
        await deleteAdmitted(engine, t.id, 'prune --delete');
        result.deleted.push(t.id);
      } else {
        const bytes = await archiveOne(engine, archive, t, statuses);
        if (bytes === undefined) result.skipped.push({ id: t.id, reason: 'it changed meanwhile' });
        else {
          result.archived.push(t.id);
          result.archive_bytes += bytes;
        }
      }
    } catch (err) {
      if (isAtlasError(err, 'not_found')) continue; // deleted meanwhile
      const reason = isAtlasError(err, 'locked') ? 'another process holds its lock' : (err as Error).message;
      result.skipped.push({ id: t.id, reason });
      engine.log?.warn({ task: t.id, err: (err as Error).message }, `prune skipped task ${t.id}: ${reason}`);
    }
  }
  if (del && result.deleted.length === 0) giveBack?.();
  // `atlas events` right after a prune shows its task.archived events.
  if (result.archived.length) await engine.events.store.flush().catch(() => undefined);
  result.duration_ms = Math.round(performance.now() - started);
  engine.log?.info({ prune: { ...result, archived: result.archived.length, deleted: result.deleted.length } }, `prune: ${result.archived.length} archived, ${result.deleted.length} deleted, ${result.skipped.length} skipped`);
  return result;
}

/** Archives one task under its lock; undefined when it is no longer what was selected. */
async function archiveOne(engine: Engine, archive: TaskArchives, t: TaskSummary, statuses: Set<TaskStatus>): Promise<number | undefined> {
  await engine.store.syncLog(t.workspace, t.id);
  const s = await archive.archiveIf(t.workspace, t.id, (task) => {
    if (engine.activeTaskIds.includes(t.id) || !statuses.has(task.status)) return false;
    engine.store.closeLog(t.workspace, t.id);
    return true;
  });
  if (!s) return undefined;
  if (!archive.writesEvents) engine.events.moved('task.archived', s, s.archived_at, { archive_bytes: s.archive_bytes });
  engine.index.remove(t.id, t.workspace);
  engine.emit('archived', t.id);
  return s.archive_bytes;
}

/** Removes whole events-log segments whose events are all older than `olderThanMs` (by the clock
 *  of util/clock.ts, which a test can move with ATLAS_TEST_CLOCK). */
export async function pruneEvents(engine: Engine, olderThanMs: number): Promise<number> {
  const cutoff = new Date(now().getTime() - olderThanMs).toISOString();
  const store = engine.events.store;
  let since = 0;
  for (;;) {
    const page = await store.read(since, 5000);
    // Every event is older: all of them may go (the store keeps the segment it writes to).
    if (page.length === 0) return since > 0 ? store.pruneBefore(since + 1) : 0;
    const firstNew = page.find((e) => e.at >= cutoff);
    if (firstNew) return firstNew.seq > 1 ? store.pruneBefore(firstNew.seq) : 0;
    since = page[page.length - 1]!.seq;
  }
}
