// The task state machine (DESIGN §3). Every status change goes through `transition`, which
// checks this one table and records the change in transitions[]; an illegal change throws
// InvalidTransitionError and writes nothing.
import { AtlasError } from '../errors.js';
import { RESUMABLE_STATUSES, type TaskRecord, type TaskStatus } from '../store/records.js';

const RESUMABLE: TaskStatus[] = ['pending', 'abandoned'];

export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  pending: ['running', 'abandoned'],
  running: [
    'completed',
    'failed',
    'validation_failed',
    'gh_failed',
    'ci_failed',
    'ci_timeout',
    'awaiting_approval',
    'interrupted',
    'abandoned',
    'pending',
  ],
  awaiting_approval: ['pending', 'rejected', 'abandoned'],
  validation_failed: RESUMABLE,
  failed: RESUMABLE,
  gh_failed: RESUMABLE,
  ci_failed: RESUMABLE,
  ci_timeout: RESUMABLE,
  interrupted: RESUMABLE,
  completed: [],
  rejected: [],
  abandoned: [],
};

/** Statuses a user can `resume` from (the table above sends each of them to RESUMABLE). */
export const RESUMABLE_FROM: ReadonlySet<TaskStatus> = new Set(RESUMABLE_STATUSES);

export class InvalidTransitionError extends AtlasError {
  constructor(task: TaskRecord, to: TaskStatus) {
    super('invalid_transition', `task ${task.id} cannot go from ${task.status} to ${to}`, {
      details: { id: task.id, from_status: task.status, to_status: to },
    });
    this.name = 'InvalidTransitionError';
  }
}

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Changes `task.status` to `to`, recording why. Throws InvalidTransitionError if the table forbids it. */
export function transition(task: TaskRecord, to: TaskStatus, reason: string, at: string = new Date().toISOString()): void {
  if (!canTransition(task.status, to)) throw new InvalidTransitionError(task, to);
  task.transitions.push({ from_status: task.status, to_status: to, timestamp: at, reason });
  task.status = to;
  task.updated_at = at;
  if (to === 'completed' || to === 'rejected' || to === 'abandoned') task.completed_at = at;
}
