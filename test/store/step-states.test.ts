// The step state machine (store/step-states.ts): one table of which event may happen in
// which status; an impossible change throws and writes nothing; each event writes the fields
// that go with it; the rebuild from task.log replays through the same events without the check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { newStepState } from '../../src/engine/new-task.js';
import { InvalidStepTransitionError, STEP_STATUSES, canStepEvent, interruptedResult, stepEvent, type StepEvent } from '../../src/store/step-states.js';
import { replay } from '../../src/store/repair.js';
import type { StepState, StepStatus } from '../../src/store/records.js';
import type { LogRecord } from '../../src/store/task-log.js';
import { makeTask } from './helpers.js';

function step(status: StepStatus, fields: Partial<StepState> = {}): StepState {
  return { ...newStepState({ name: 'build', type: 'shell', run: 'true' }), status, ...fields };
}

const EVENTS: StepEvent[] = [
  { kind: 'start' },
  { kind: 'complete' },
  { kind: 'fail', error: 'boom' },
  { kind: 'wait' },
  { kind: 'retry', error: 'boom', next_attempt_at: '2026-01-01T00:00:05.000Z' },
  { kind: 'interrupt' },
  { kind: 'reset' },
];

const ALLOWED: Record<StepEvent['kind'], StepStatus[]> = {
  start: ['pending', 'running'],
  complete: ['running', 'waiting'],
  fail: ['running', 'waiting'],
  wait: ['running'],
  retry: ['running'],
  interrupt: ['running'],
  reset: ['pending', 'running', 'waiting', 'completed', 'failed'],
};

test('step states: every event is allowed exactly from the statuses of the table; others throw and write nothing', () => {
  assert.deepEqual([...STEP_STATUSES].sort(), ['completed', 'failed', 'pending', 'running', 'waiting'], 'no unused status (skipped is gone)');
  for (const ev of EVENTS) {
    for (const from of STEP_STATUSES) {
      const s = step(from, { error: 'before', attempts: 2 });
      const before = structuredClone(s);
      if (ALLOWED[ev.kind].includes(from)) {
        assert.equal(canStepEvent(from, ev.kind), true, `${ev.kind} from ${from}`);
        stepEvent(s, ev);
      } else {
        assert.equal(canStepEvent(from, ev.kind), false, `${ev.kind} from ${from}`);
        assert.throws(() => stepEvent(s, ev), (err: unknown) => err instanceof InvalidStepTransitionError && isAtlasError(err, 'invalid_transition'));
        assert.deepEqual(s, before, `${ev.kind} from ${from} wrote nothing`);
        // A replay applies it anyway: the log says it happened.
        stepEvent(s, ev, { replay: true });
      }
    }
  }
});

test('step states: each event writes the fields that go with it', () => {
  const s = step('pending', { attempts: 1, error: 'old', next_attempt_at: '2026-01-01T00:00:00.000Z' });
  stepEvent(s, { kind: 'start', at: '2026-01-01T00:00:01.000Z' });
  assert.deepEqual([s.status, s.attempts, s.started_at, s.completed_at, s.error, s.next_attempt_at], ['running', 2, '2026-01-01T00:00:01.000Z', null, null, null]);
  s.process = { pid: 1, pgid: 1, start_ticks: null, started_at: '2026-01-01T00:00:01.000Z' };
  s.deadline = '2026-01-01T00:01:00.000Z';
  stepEvent(s, { kind: 'retry', error: 'exit 1', next_attempt_at: '2026-01-01T00:00:03.000Z' });
  assert.deepEqual([s.status, s.error, s.deadline, s.next_attempt_at], ['pending', 'exit 1', null, '2026-01-01T00:00:03.000Z'], 'a retry gets a fresh deadline');
  stepEvent(s, { kind: 'start' });
  assert.equal(s.attempts, 3);
  s.process = { pid: 1, pgid: 1, start_ticks: null, started_at: '2026-01-01T00:00:01.000Z' };
  stepEvent(s, { kind: 'interrupt' });
  assert.deepEqual([s.status, s.process, s.attempts], ['pending', null, 3], 'an interrupted step keeps its attempt count');
  stepEvent(s, { kind: 'start' });
  stepEvent(s, { kind: 'wait' });
  stepEvent(s, { kind: 'fail', error: 'rejected: no', at: '2026-01-01T00:00:09.000Z' });
  assert.deepEqual([s.status, s.error, s.completed_at], ['failed', 'rejected: no', '2026-01-01T00:00:09.000Z']);
  s.deadline = '2026-01-01T00:01:00.000Z';
  stepEvent(s, { kind: 'reset' });
  assert.deepEqual([s.status, s.error, s.completed_at, s.deadline, s.process], ['pending', null, null, null, null]);
});

test('step states: an interrupted attempt is recorded with its status, not read from its message', () => {
  const s = step('running', { attempts: 2, started_at: '2026-01-01T00:00:00.000Z' });
  const r = interruptedResult(s, 3, s.started_at!, '2026-01-01T00:00:02.500Z');
  assert.deepEqual([r.status, r.step_index, r.attempt, r.duration_ms, r.exit_code], ['interrupted', 3, 2, 2500, null]);
});

test('step states: a rebuild from task.log replays through the machine, a torn line included', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const initial = makeTask('task-20260101-000000', 'ws', {
    steps: [newStepState({ name: 'a', type: 'shell', run: 'true' }), newStepState({ name: 'b', type: 'shell', run: 'false' })],
    transitions: [],
    created_at: at,
    updated_at: at,
  });
  const t = (s: number) => new Date(Date.parse(at) + s * 1000).toISOString();
  const records = [
    { event: 'task_created', time: t(0), task: initial },
    { event: 'transition', time: t(1), from_status: 'pending', to_status: 'running', reason: 'picked up' },
    // step a's step_started line was torn: its end still counts.
    { event: 'step_finished', time: t(2), step_index: 0, attempt: 1, status: 'completed' },
    { event: 'step_started', time: t(3), step_index: 1, attempt: 1 },
    { event: 'step_finished', time: t(4), step_index: 1, attempt: 1, status: 'failed', error: 'exit 1' },
    { event: 'step_retry', time: t(4), step_index: 1, attempt: 1, delay_ms: 2000, error: 'exit 1' },
  ] as unknown as LogRecord[];
  const rebuilt = replay(records, 'ws', initial.id)!;
  assert.equal(rebuilt.steps[0]!.status, 'completed');
  assert.equal(rebuilt.current_step, 1);
  const b = rebuilt.steps[1]!;
  assert.deepEqual([b.status, b.attempts, b.error, b.next_attempt_at], ['pending', 1, 'exit 1', t(6)]);
});
