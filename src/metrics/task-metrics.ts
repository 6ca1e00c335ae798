// Turns the engine's task checkpoints into metric observations. Every 'task' event carries
// the whole record; what is new since the last event of that task (transitions, step
// results) is observed once. A task first seen by this process counts only what happened
// after the process started, so a restart never counts a finished task twice.
import type { EventEmitter } from 'node:events';
import type { TaskRecord, TaskStatus } from '../store/records.js';
import { TERMINAL_STATUSES } from '../store/records.js';
import { metrics } from './metrics.js';

/** Statuses in which a run of a task ends: terminal ones and the failure statuses a resume leaves. */
const FINISHED: ReadonlySet<TaskStatus> = new Set<TaskStatus>(['completed', 'rejected', 'abandoned', 'failed', 'validation_failed', 'gh_failed', 'ci_failed', 'ci_timeout']);

interface Seen {
  transitions: number;
  results: number;
}

/** Subscribes to an engine's 'task' events; returns the function that unsubscribes. */
export function observeTasks(engine: EventEmitter, since: Date = new Date()): () => void {
  const startIso = since.toISOString();
  const seen = new Map<string, Seen>();
  const onTask = (t: TaskRecord) => {
    let s = seen.get(t.id);
    if (!s) {
      s = {
        transitions: t.transitions.filter((tr) => tr.timestamp < startIso).length,
        results: t.step_results.filter((r) => r.completed_at < startIso).length,
      };
      seen.set(t.id, s);
    }
    for (let i = s.transitions; i < t.transitions.length; i++) {
      const tr = t.transitions[i]!;
      if (FINISHED.has(tr.to_status)) metrics().tasksFinished.inc({ template: t.template, status: tr.to_status });
      if (tr.to_status === 'running' && tr.from_status === 'pending') {
        for (let j = i - 1; j >= 0; j--) {
          const prev = t.transitions[j]!;
          if (prev.to_status !== 'pending') continue;
          const waited = (Date.parse(tr.timestamp) - Date.parse(prev.timestamp)) / 1000;
          if (waited >= 0) metrics().queueWait.observe(waited);
          break;
        }
      }
    }
    for (let i = s.results; i < t.step_results.length; i++) {
      const r = t.step_results[i]!;
      metrics().stepDuration.observe({ type: t.steps[r.step_index]?.type ?? 'unknown', status: r.status }, r.duration_ms / 1000);
    }
    s.transitions = t.transitions.length;
    s.results = t.step_results.length;
    // A terminal task changes no more: forget it, so memory follows the open tasks only.
    if (TERMINAL_STATUSES.has(t.status)) seen.delete(t.id);
  };
  const onDeleted = (id: string) => seen.delete(id);
  engine.on('task', onTask);
  engine.on('deleted', onDeleted);
  return () => {
    engine.off('task', onTask);
    engine.off('deleted', onDeleted);
  };
}
