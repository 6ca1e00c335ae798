// Events (DESIGN §10): every task and step change, as {seq, id, type, at, task_id, workspace,
// data}. `seq` is store-wide and only grows; `id` is deterministic, derived from the fact the
// event reports (the task's n-th transition, its n-th step result), so the same fact can never
// be recorded under two ids: recovery re-derives what a crash cut off and dedupes by id.
//
// Id shapes (task ids hold no '.'):  <task>.t<i>  <task>.t<i>.approval  <task>.t<i>.finished
// (transitions[i]); <task>.r<i> (step_results[i]); <task>.s<step>.<attempt> (step.started,
// live only); <task>.deleted; <task>.archived.<ms> and <task>.unarchived.<ms> (a task may be
// archived and brought back more than once: the time of the move tells them apart).
import type { StepResult, TaskRecord, TaskStatus } from '../store/records.js';
import { TERMINAL_STATUSES } from '../store/records.js';

export const EVENT_TYPES = [
  'task.created',
  'task.status_changed',
  'task.awaiting_approval',
  'task.finished',
  'task.deleted',
  'task.archived',
  'task.unarchived',
  'step.started',
  'step.finished',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface AtlasEvent {
  seq: number;
  id: string;
  type: EventType;
  at: string;
  task_id: string;
  workspace: string;
  data: Record<string, unknown>;
}

/** An event before the log gives it a seq and its `at` (the time it was recorded; it only grows). */
export type EventDraft = Omit<AtlasEvent, 'seq' | 'at'>;

/** How far a task's facts have been turned into events: counts of transitions[] and step_results[]. */
export interface Cursor {
  t: number;
  r: number;
}

export function cursorOf(task: Pick<TaskRecord, 'transitions' | 'step_results'>): Cursor {
  return { t: task.transitions.length, r: task.step_results.length };
}

/** A step attempt that started; it becomes a step.started event with the next checkpoint's events. */
export interface StepStart {
  step_index: number;
  attempt: number;
  at: string;
}

/** The event of a task moved into the archive (atlas prune, retention:) or back out of it. */
export function archiveEvent(type: 'task.archived' | 'task.unarchived', task: Pick<TaskRecord, 'id' | 'workspace' | 'status'>, at: string, data: Record<string, unknown> = {}): EventDraft {
  const kind = type === 'task.archived' ? 'archived' : 'unarchived';
  return { id: `${task.id}.${kind}.${Date.parse(at)}`, type, task_id: task.id, workspace: task.workspace, data: { status: task.status, ...data } };
}

/** What an event id says about the fact it reports: transition or result index. */
export function factOf(id: string): { task_id: string; kind: 't' | 'r'; index: number } | undefined {
  const m = /^(task-[^.]+)\.([tr])(\d+)(?:\.[a-z]+)?$/.exec(id);
  return m ? { task_id: m[1]!, kind: m[2] as 't' | 'r', index: Number(m[3]) } : undefined;
}

/**
 * The events for the facts of `task` past `since`, in the order they happened (transitions
 * and results interleaved by time; a result before the transition it caused).
 */
export function deriveEvents(task: TaskRecord, since: Cursor, include: (at: string) => boolean = () => true, started: readonly StepStart[] = []): EventDraft[] {
  const base = { task_id: task.id, workspace: task.workspace };
  const items: Array<{ at: string; order: number; drafts: EventDraft[] }> = [];
  for (const s of started) {
    const step = task.steps[s.step_index];
    if (!step) continue;
    const data = { step: step.name, step_index: s.step_index, attempt: s.attempt, type: step.type, timestamp: s.at };
    items.push({ at: s.at, order: 2, drafts: [{ ...base, id: `${task.id}.s${s.step_index}.${s.attempt}`, type: 'step.started', data }] });
  }
  for (let i = since.r; i < task.step_results.length; i++) {
    const r = task.step_results[i]!;
    if (!include(r.completed_at)) continue;
    items.push({ at: r.completed_at, order: 0, drafts: [{ ...base, id: `${task.id}.r${i}`, type: 'step.finished', data: stepData(r, i) }] });
  }
  for (let i = since.t; i < task.transitions.length; i++) {
    const tr = task.transitions[i]!;
    if (!include(tr.timestamp)) continue;
    const drafts: EventDraft[] = [];
    const at = tr.timestamp;
    if (i === 0 && tr.from_status === null) {
      drafts.push({ ...base, id: `${task.id}.t0`, type: 'task.created', data: { template: task.template, description: task.description, status: tr.to_status, priority: task.priority, timestamp: at } });
    } else {
      drafts.push({ ...base, id: `${task.id}.t${i}`, type: 'task.status_changed', data: { from: tr.from_status, to: tr.to_status, reason: tr.reason, timestamp: at } });
    }
    if (tr.to_status === 'awaiting_approval') {
      const step = task.steps[task.current_step];
      drafts.push({ ...base, id: `${task.id}.t${i}.approval`, type: 'task.awaiting_approval', data: { step: step?.name ?? null, prompt: promptOf(step?.definition), timestamp: at } });
    }
    if (TERMINAL_STATUSES.has(tr.to_status as TaskStatus)) {
      drafts.push({ ...base, id: `${task.id}.t${i}.finished`, type: 'task.finished', data: { status: tr.to_status, reason: tr.reason, timestamp: at } });
    }
    items.push({ at, order: 1, drafts });
  }
  // Stable: at the same instant a result comes before the transition it caused, then a step start.
  items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.order - b.order));
  return items.flatMap((x) => x.drafts);
}

function stepData(r: StepResult, index: number): Record<string, unknown> {
  return {
    step: r.step_name,
    step_index: r.step_index,
    result_index: index,
    attempt: r.attempt,
    status: r.status,
    exit_code: r.exit_code,
    duration_ms: r.duration_ms,
    error: r.error,
    completed_at: r.completed_at,
  };
}

function promptOf(def: unknown): string | null {
  const p = (def as { prompt?: unknown } | undefined)?.prompt;
  return typeof p === 'string' ? p.slice(0, 4000) : null;
}

/** A type filter entry: an exact type, or a glob with '*' ('task.*', '*'). */
export function typeMatcher(patterns: readonly string[] | undefined): (type: string) => boolean {
  if (!patterns || patterns.length === 0) return () => true;
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
  return (type) => res.some((re) => re.test(type));
}

export interface EventFilter {
  types?: readonly string[] | undefined;
  task_id?: string | undefined;
}

export function eventFilter(f: EventFilter): (e: AtlasEvent) => boolean {
  const typeOk = typeMatcher(f.types);
  return (e) => (f.task_id === undefined || e.task_id === f.task_id) && typeOk(e.type);
}
