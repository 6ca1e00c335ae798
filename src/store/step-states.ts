// The step state machine, beside the task's (engine/transitions.ts). Every change of a step's status
// is one of the events below, applied by `stepEvent`, which checks this table and writes the
// fields that go with the change; an impossible change throws and writes nothing. The runner,
// the operator actions, recovery and the rebuild of a task from its log (repair.ts)
// all go through it. It lives in the store, not the engine, because the store's rebuild needs it
// and the store depends on nothing above it.
//
//   pending   --start-->     running     (a new attempt: attempts + 1, started_at)
//   running   --start-->     running     (an interrupted attempt runs again at once)
//   running   --complete-->  completed   (also waiting --complete--> completed: approve)
//   running   --fail-->      failed      (also waiting --fail--> failed: reject)
//   running   --wait-->      waiting     (a human step waits for approve or reject)
//   running   --retry-->     pending     (the attempt failed; the next starts after a delay)
//   running   --interrupt--> pending     (cut off, with on_interrupt: pause; resume runs it)
//   any       --reset-->     pending     (resume, reject --retry-from: run it afresh)
//
// A rebuild replays the log's records with `replay: true`: the table is not checked there
// (a torn log line may hide a change in between), but every field is written the same way.
import { AtlasError } from '../errors.js';
import type { StepResult, StepState, StepStatus } from './records.js';

export const STEP_STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed'] as const satisfies readonly StepStatus[];

export type StepEvent =
  | { kind: 'start'; attempt?: number; at?: string }
  | { kind: 'complete'; at?: string }
  | { kind: 'fail'; error: string | null; at?: string }
  | { kind: 'wait' }
  | { kind: 'retry'; error: string | null; next_attempt_at: string }
  | { kind: 'interrupt' }
  | { kind: 'reset' };

type Kind = StepEvent['kind'];

/** From which statuses each event may happen. */
const FROM: Readonly<Record<Kind, readonly StepStatus[]>> = {
  start: ['pending', 'running'],
  complete: ['running', 'waiting'],
  fail: ['running', 'waiting'],
  wait: ['running'],
  retry: ['running'],
  interrupt: ['running'],
  reset: STEP_STATUSES,
};

export class InvalidStepTransitionError extends AtlasError {
  constructor(step: StepState, event: Kind) {
    super('invalid_transition', `step ${step.name} cannot ${event} while it is ${step.status}`, { details: { step: step.name, status: step.status, event } });
    this.name = 'InvalidStepTransitionError';
  }
}

export function canStepEvent(status: StepStatus, event: Kind): boolean {
  return FROM[event].includes(status);
}

/** Applies one event to a step (see the table at the top). */
export function stepEvent(step: StepState, ev: StepEvent, options: { replay?: boolean } = {}): void {
  if (!options.replay && !canStepEvent(step.status, ev.kind)) throw new InvalidStepTransitionError(step, ev.kind);
  switch (ev.kind) {
    case 'start':
      step.status = 'running';
      step.attempts = ev.attempt ?? step.attempts + 1;
      step.started_at = ev.at ?? new Date().toISOString();
      step.completed_at = null;
      step.error = null;
      step.process = null;
      step.next_attempt_at = null;
      return;
    case 'complete':
      step.status = 'completed';
      step.completed_at = ev.at ?? new Date().toISOString();
      return;
    case 'fail':
      step.status = 'failed';
      step.error = ev.error;
      step.completed_at = ev.at ?? new Date().toISOString();
      return;
    case 'wait':
      step.status = 'waiting';
      return;
    case 'retry':
      step.status = 'pending';
      step.error = ev.error;
      step.deadline = null; // a retry is a fresh start, with a fresh deadline
      step.next_attempt_at = ev.next_attempt_at;
      return;
    case 'interrupt':
      step.status = 'pending';
      step.process = null;
      return;
    case 'reset':
      step.status = 'pending';
      step.completed_at = null;
      step.error = null;
      step.deadline = null;
      step.process = null;
      return;
    default: {
      const never: never = ev;
      throw new Error(`unknown step event ${JSON.stringify(never)}`);
    }
  }
}

export const INTERRUPTED_ERROR = 'interrupted: the daemon stopped while this attempt ran';

/** The result of an attempt that was cut off (the daemon stopped, or its process ended unseen). */
export function interruptedResult(step: StepState, index: number, startedAt: string, completedAt: string, error: string = INTERRUPTED_ERROR): StepResult {
  return {
    step_index: index,
    step_name: step.name,
    attempt: step.attempts,
    status: 'interrupted',
    started_at: startedAt,
    completed_at: completedAt,
    duration_ms: Math.max(0, Date.parse(completedAt) - Date.parse(startedAt)),
    exit_code: null,
    signal: null,
    error,
    artifacts: [],
    files_changed: [],
    output_bytes: 0,
    output_truncated: false,
  };
}
