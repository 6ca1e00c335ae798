// kill -9 of the daemon at random moments while several tasks of many short steps run, then
// a restart, at least 30 times (DESIGN §6). See kill-loop.ts for what is checked after every
// crash and at the end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { percentile } from './harness.js';
import { runKillLoop } from './kill-loop.js';

test('random kill -9 of the daemon, 30 times: checkpoints always parse, finished steps never re-run, running steps re-attached (never re-run once their work is done), nothing left behind', { timeout: 150_000 }, async () => {
  const stats = await runKillLoop({ crashes: 30, openTasks: 4, stepsPerTask: 12, finishTimeoutMs: 45_000 });
  const rec = [...stats.recovery_ms].sort((a, b) => a - b);
  console.log(
    `# ${stats.crashes} crashes (${stats.startup_crashes} while starting), ${stats.tasks} tasks, ${stats.steps_finished} steps; ` +
      `${stats.interrupted_steps_seen} interrupted steps seen, ${stats.interrupted_steps_reattached} re-attached, ${stats.interrupted_steps_rerun} re-run, ${stats.finished_while_down_rerun} re-run after they finished while no daemon ran; recovery p50 ${percentile(rec, 50)} ms, p99 ${percentile(rec, 99)} ms`,
  );
  assert.deepEqual(stats.problems, [], `problems (home kept at ${stats.home})`);
  assert.ok(stats.crashes >= 30, `only ${stats.crashes} crashes`);
  assert.equal(stats.corrupted_checkpoints, 0);
  assert.equal(stats.finished_steps_lost, 0);
  assert.equal(stats.finished_steps_rerun, 0);
  assert.equal(stats.duplicate_attempts, 0);
  assert.equal(stats.interrupted_steps_not_rerun, 0);
  assert.equal(stats.finished_while_down_rerun, 0, 'a step that finished while no daemon ran was run again');
  assert.equal(stats.leftover_temp_files, 0);
  assert.equal(stats.orphans, 0);
  // The loop must really have cut steps off mid-run, or it proved nothing.
  assert.ok(stats.interrupted_steps_seen > 0, 'no crash caught a running step');
  assert.ok(stats.interrupted_steps_reattached > 0, 'no step outlived a crash to be re-attached');
  assert.ok(stats.steps_finished >= 12, 'too few steps finished');
});
