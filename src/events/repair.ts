// Events repair at start, before recovery touches any task. A kill -9 can fall between a
// checkpoint (durable) and the write of its events: those facts are in task.json but not in
// the log. Here they are derived again, with the same deterministic ids, and appended once.
//
// Which tasks: those that can have had a checkpoint since the last event: every task still
// pending or running (step checkpoints do not move updated_at), and every task updated within
// SLACK of the last event. For each, the newest event of each kind (transition, result) found
// by scanning the log backwards tells how far its facts were recorded; events of one task are
// appended in fact order, so everything past that is missing. The scan stops once each task
// is settled; a fact older than the oldest event scanned counts as recorded (the log's `at`
// only grows, so its event, if written, would be older still), and so does a fact no newer than
// the newest event that pruning removed (its event may be among those).
import type { TaskRecord, TaskSummary } from '../store/records.js';
import { deriveEvents, factOf, type Cursor } from './event.js';
import type { EventStore } from './event-log.js';

/** How long after its checkpoint's updated_at a task's events may still be unwritten at a crash. */
const SLACK_MS = 60_000;

export interface EventRepairReport {
  candidates: number;
  appended: number;
  scanned_events: number;
}

interface Candidate {
  task: TaskRecord;
  lastT: string | undefined;
  lastR: string | undefined;
  t: number | undefined;
  r: number | undefined;
}

export async function repairEvents(
  log: EventStore,
  tasks: readonly Pick<TaskSummary, 'id' | 'workspace' | 'status' | 'updated_at'>[],
  read: (workspace: string, id: string) => Promise<TaskRecord | undefined>,
): Promise<EventRepairReport> {
  const report: EventRepairReport = { candidates: 0, appended: 0, scanned_events: 0 };
  // Events written in their checkpoint's transaction cannot have been cut off from it.
  if (log.transactional) return report;
  const genesis = log.genesis;
  let lastAt: string | undefined;
  for await (const chunk of log.readBackward()) {
    lastAt = chunk[0]?.at;
    if (lastAt !== undefined) break;
  }
  const since = new Date(Date.parse(lastAt ?? genesis) - SLACK_MS).toISOString();
  const cands = new Map<string, Candidate>();
  for (const s of tasks) {
    if (s.updated_at < genesis && s.status !== 'running' && s.status !== 'pending') continue;
    if (s.status !== 'running' && s.status !== 'pending' && s.updated_at < since) continue;
    const task = await read(s.workspace, s.id).catch(() => undefined);
    if (!task) continue;
    cands.set(task.id, { task, lastT: task.transitions.at(-1)?.timestamp, lastR: task.step_results.at(-1)?.completed_at, t: undefined, r: undefined });
  }
  report.candidates = cands.size;
  if (cands.size === 0) return report;

  let open = cands.size;
  const settle = (c: Candidate, kind: 't' | 'r', value: number) => {
    if (c[kind] !== undefined) return;
    c[kind] = value;
    if (c.t !== undefined && c.r !== undefined) open--;
  };
  for (const c of cands.values()) {
    if (c.lastT === undefined || c.lastT < genesis) settle(c, 't', c.task.transitions.length);
    if (c.lastR === undefined || c.lastR < genesis) settle(c, 'r', c.task.step_results.length);
  }
  let oldest: string | undefined;
  let oldestSeq: number | undefined;
  for await (const chunk of log.readBackward()) {
    if (open === 0) break;
    for (const e of chunk) {
      report.scanned_events++;
      oldest = e.at;
      oldestSeq = e.seq;
      const f = factOf(e.id);
      const c = f && cands.get(f.task_id);
      if (c) settle(c, f.kind, f.index + 1);
    }
    // Facts older than `oldest` count as recorded: settle whoever has nothing newer.
    // (with SLACK: a fact's checkpoint may take a while to land before its events are written).
    if (oldest !== undefined) {
      const before = new Date(Date.parse(oldest) - SLACK_MS).toISOString();
      for (const c of cands.values()) {
        if (c.lastT !== undefined && c.lastT < before) settle(c, 't', c.task.transitions.length);
        if (c.lastR !== undefined && c.lastR < before) settle(c, 'r', c.task.step_results.length);
      }
    }
  }
  // The whole log was read: facts since genesis without an event are missing (unless old segments were pruned).
  let floor = oldest === undefined || oldestSeq === 1 ? genesis : new Date(Date.parse(oldest) - SLACK_MS).toISOString();
  // Facts no newer than the newest pruned event may have had theirs pruned: never cut off by a crash.
  const pruned = log.prunedAt !== undefined ? new Date(Date.parse(log.prunedAt) + 1).toISOString() : undefined;
  if (pruned !== undefined && pruned > floor) floor = pruned;
  for (const c of cands.values()) {
    const cursor: Cursor = {
      t: c.t ?? c.task.transitions.filter((x) => x.timestamp < floor).length,
      r: c.r ?? c.task.step_results.filter((x) => x.completed_at < floor).length,
    };
    const drafts = deriveEvents(c.task, cursor, (at) => at >= genesis);
    if (drafts.length > 0) {
      log.append(drafts);
      report.appended += drafts.length;
    }
  }
  await log.flush();
  return report;
}
