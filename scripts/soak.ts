// The crash soak: the random-kill loop of the fault-injection suite, for many iterations.
// A real daemon runs tasks of many short steps and is killed with SIGKILL at random moments
// (some while it is still starting and recovering), then restarted; every checkpoint is
// checked after every crash, and the end state is checked against DESIGN §6.
//
// Usage: npm run soak [-- ITERATIONS]   (default 1000; not run in CI)
// Prints the counters and recovery time percentiles; exits 1 if any bad counter is non-zero.
import { percentile } from '../test/recovery/harness.js';
import { runKillLoop } from '../test/recovery/kill-loop.js';

const arg = process.argv[2];
const iterations = arg === undefined ? 1000 : Number(arg);
if (!Number.isInteger(iterations) || iterations < 1) {
  process.stderr.write(`usage: soak [ITERATIONS]  (a whole number of crashes, default 1000; got ${arg})\n`);
  process.exit(2);
}
const verbose = process.argv.includes('--verbose') || process.env['SOAK_VERBOSE'] === '1';

const started = Date.now();
process.stderr.write(`soak: ${iterations} crashes; progress every 50; Ctrl-C stops early and still checks and reports\n`);
// A first signal ends the loop (its daemon and steps are then stopped and checked); a second one exits.
const stop = new AbortController();
const onSignal = () => {
  if (stop.signal.aborted) process.exit(130);
  process.stderr.write('soak: stopping after this crash; signal again to quit at once\n');
  stop.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
const stats = await runKillLoop({
  signal: stop.signal,
  crashes: iterations,
  // Keep the home small: a batch of tasks is replaced as it completes.
  openTasks: 4,
  stepsPerTask: 12,
  finishTimeoutMs: 120_000,
  log: (msg) => {
    if (verbose || msg.startsWith('PROBLEM') || /^crash \d*[05]0:/.test(msg)) process.stderr.write(`soak: ${msg}\n`);
  },
});

const rec = [...stats.recovery_ms].sort((a, b) => a - b);
const res = [...stats.resume_ms].sort((a, b) => a - b);
const bad = {
  corrupted_checkpoints: stats.corrupted_checkpoints,
  finished_steps_lost: stats.finished_steps_lost,
  finished_steps_rerun: stats.finished_steps_rerun,
  duplicate_attempts: stats.duplicate_attempts,
  interrupted_steps_not_rerun: stats.interrupted_steps_not_rerun,
  finished_while_down_rerun: stats.finished_while_down_rerun,
  leftover_temp_files: stats.leftover_temp_files,
  orphans: stats.orphans,
  other_problems: stats.problems.length,
};
const lines = [
  `crashes                     ${stats.crashes} (${stats.startup_crashes} while starting)`,
  `tasks                       ${stats.tasks}, steps finished ${stats.steps_finished}`,
  `corrupted checkpoints       ${stats.corrupted_checkpoints}`,
  `finished steps lost         ${stats.finished_steps_lost}`,
  `finished steps re-run       ${stats.finished_steps_rerun}`,
  `attempts run twice          ${stats.duplicate_attempts}`,
  `steps running at a crash    ${stats.interrupted_steps_seen} seen; re-attached ${stats.interrupted_steps_reattached}, re-run ${stats.interrupted_steps_rerun}, neither ${stats.interrupted_steps_not_rerun}`,
  `finished while down, re-run ${stats.finished_while_down_rerun} (steps that finished while no daemon ran and were still run again; must be 0)`,
  `temp files left             ${stats.leftover_temp_files}`,
  `leftover trees killed       ${stats.leftover_groups_killed} (by recovery, before re-running their steps)`,
  `orphans                     ${stats.orphans}`,
  `recovery (restart->answer)  p50 ${percentile(rec, 50)} ms, p99 ${percentile(rec, 99)} ms, max ${rec.at(-1) ?? 0} ms (${rec.length} restarts)`,
  `first step resumed          p50 ${percentile(res, 50)} ms, p99 ${percentile(res, 99)} ms (${res.length} restarts)`,
  `wall time                   ${((Date.now() - started) / 1000).toFixed(1)} s`,
];
process.stdout.write(lines.join('\n') + '\n');
if (stats.problems.length) {
  process.stdout.write(`problems (first ${Math.min(stats.problems.length, 20)}):\n${stats.problems.slice(0, 20).map((p) => `  - ${p}`).join('\n')}\nhome kept at ${stats.home}\n`);
}
const failed = Object.values(bad).some((n) => n > 0);
process.exit(failed ? 1 : 0);
