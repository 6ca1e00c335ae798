// Crash recovery (DESIGN §6) for real: an engine runs in a child process
// (test/fixtures/engine-child.ts) and is SIGKILLed while a step runs. A new Engine on the
// same home must kill the step's leftover process tree, re-run the interrupted step as a
// new attempt (or pause the task with on_interrupt: pause), never re-run finished steps,
// and pick up tasks that were still queued.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { isAtlasError } from '../../src/errors.js';
import type { TaskRecord } from '../../src/store/records.js';
import { FIXTURES_DIR, TEST_CONFIG, assertDead, closeEnv, isDead, openEnv, readPid, readTaskFile, resultSummary, settle, waitFor, writeTemplate, type TestEnv } from './helpers.js';

interface Crashed {
  ids: string[];
  child: ChildProcess;
}

/** Runs an engine in a child process that starts one task per template; resolves with their ids. */
async function startChildEngine(env: TestEnv, templates: string[]): Promise<Crashed> {
  const child = spawn(process.execPath, [path.join(FIXTURES_DIR, 'engine-child.js'), env.home, JSON.stringify(env.config), env.wsName, env.ws, ...templates], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = readline.createInterface({ input: child.stdout! });
  const ids: string[] = [];
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`engine-child exited early (${code}): ${stderr}`))));
  exited.catch(() => undefined);
  const got = new Promise<void>((resolve) => {
    lines.on('line', (line) => {
      const m = /^task (\S+)$/.exec(line);
      if (m) ids.push(m[1]!);
      if (ids.length === templates.length) resolve();
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`engine-child did not start its tasks in 15s: ${stderr}`)), 15_000)));
  try {
    await Promise.race([got, exited, bound]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { ids, child };
}

async function sigkill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await gone;
}

/** First step appends to runs-first; the second (a validation, which is re-run rather than re-attached) records its attempt and, on attempt 1, hangs with a grandchild. */
function crashTemplate(env: TestEnv, name: string, onInterrupt: 'rerun' | 'pause'): void {
  writeTemplate(env, {
    name,
    steps: [
      { name: 'first', type: 'shell', run: 'echo "first $ATLAS_ATTEMPT" >> runs-first' },
      {
        // A validation step: its process is killed and re-run after a crash (a shell step's
        // would be re-attached instead: test/recovery/reattach.test.ts).
        name: 'slow',
        type: 'validation',
        on_interrupt: onInterrupt,
        commands: [`echo "slow $ATLAS_ATTEMPT" >> runs-slow; if [ "$ATLAS_ATTEMPT" = 1 ]; then sleep 100 & echo $! > sleep.pid; wait; fi`],
      },
      { name: 'last', type: 'shell', run: 'echo "last $ATLAS_ATTEMPT" >> runs-last' },
    ],
  });
}

async function waitUntilHanging(env: TestEnv, id: string): Promise<{ task: TaskRecord; sleepPid: number }> {
  const pidFile = path.join(env.ws, 'sleep.pid');
  await waitFor('the slow step to be hanging', () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'), 15_000);
  const task = readTaskFile(env, env.wsName, id);
  return { task, sleepPid: readPid(pidFile) };
}

function lines(env: TestEnv, file: string): string[] {
  return fs.readFileSync(path.join(env.ws, file), 'utf8').trim().split('\n');
}

test('recovery: after a SIGKILL the interrupted step re-runs as a new attempt; finished steps do not; queued tasks run', async () => {
  const env = await openEnv({ start: false });
  await env.engine.shutdown();
  let crashed: Crashed | undefined;
  let second: Engine | undefined;
  try {
    crashTemplate(env, 'crash', 'rerun');
    writeTemplate(env, { name: 'queued', steps: [{ name: 'q', type: 'shell', run: 'echo queued >> runs-queued' }] });
    crashed = await startChildEngine(env, ['crash', 'queued']);
    const [id, queuedId] = crashed.ids as [string, string];
    const { task: before, sleepPid } = await waitUntilHanging(env, id);
    assert.equal(before.status, 'running');
    assert.equal(before.current_step, 1);
    assert.equal(before.steps[1]!.status, 'running');
    assert.ok(before.steps[1]!.process, 'the step process is recorded before it runs');
    assert.equal(readTaskFile(env, env.wsName, queuedId).status, 'pending');

    await sigkill(crashed.child);
    // The crash leaves the step's process tree behind.
    assert.equal(isDead(sleepPid), false, 'the step outlived its engine');

    second = await Engine.open({ home: env.home, config: env.config });
    const report = await second.start();
    assert.deepEqual(report.rerun, [id]);
    assert.deepEqual(report.requeued, [queuedId]);
    assert.equal(report.killed_groups, 1);
    assert.deepEqual(report.unreadable, []);
    await assertDead(sleepPid, 'the crashed step\'s grandchild');

    const done = await settle(second, id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.deepEqual(resultSummary(done), ['first#1:completed', 'slow#1:interrupted', 'slow#2:completed', 'last#1:completed']);
    const interrupted = done.step_results[1]!;
    assert.equal(interrupted.exit_code, null);
    assert.match(interrupted.error ?? '', /interrupted/);
    assert.deepEqual(lines(env, 'runs-first'), ['first 1']);
    assert.deepEqual(lines(env, 'runs-slow'), ['slow 1', 'slow 2']);
    assert.deepEqual(lines(env, 'runs-last'), ['last 1']);
    assert.equal(done.steps[1]!.attempts, 2);

    const queued = await settle(second, queuedId);
    assert.equal(queued.status, 'completed');
    assert.deepEqual(lines(env, 'runs-queued'), ['queued']);
    // The queued task ran after the crashed one (one task per workspace at a time).
    assert.ok(queued.step_results[0]!.started_at >= done.completed_at!);
  } finally {
    if (crashed) await sigkill(crashed.child);
    await closeEnv(env, second ? [second] : []);
  }
});

test('recovery: on_interrupt: pause makes the task interrupted; resume then re-runs the step', async () => {
  const env = await openEnv({ start: false });
  await env.engine.shutdown();
  let crashed: Crashed | undefined;
  let second: Engine | undefined;
  try {
    crashTemplate(env, 'careful', 'pause');
    crashed = await startChildEngine(env, ['careful']);
    const [id] = crashed.ids as [string];
    const { sleepPid } = await waitUntilHanging(env, id);
    await sigkill(crashed.child);

    second = await Engine.open({ home: env.home, config: env.config });
    const report = await second.start();
    assert.deepEqual(report.paused, [id]);
    assert.deepEqual(report.rerun, []);
    await assertDead(sleepPid, 'the crashed step\'s grandchild');
    const paused = await settle(second, id);
    assert.equal(paused.status, 'interrupted');
    assert.deepEqual(resultSummary(paused), ['first#1:completed', 'slow#1:interrupted']);
    assert.equal(paused.steps[1]!.process, null);
    assert.deepEqual(
      paused.transitions.map((t) => t.to_status),
      ['pending', 'running', 'interrupted'],
    );
    assert.deepEqual(lines(env, 'runs-slow'), ['slow 1']);

    await second.resume(id);
    const done = await settle(second, id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['first#1:completed', 'slow#1:interrupted', 'slow#2:completed', 'last#1:completed']);
    assert.deepEqual(lines(env, 'runs-first'), ['first 1']);
    assert.deepEqual(lines(env, 'runs-slow'), ['slow 1', 'slow 2']);
  } finally {
    if (crashed) await sigkill(crashed.child);
    await closeEnv(env, second ? [second] : []);
  }
});

test('recovery: a hand-built crashed task.json (step running, its process gone) re-runs that step only', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, {
      name: 'steps3',
      steps: [
        { name: 'a', type: 'shell', run: 'echo a >> runs' },
        { name: 'b', type: 'shell', run: 'echo b >> runs' },
        { name: 'c', type: 'shell', run: 'echo c >> runs' },
      ],
    });
    const t = await env.engine.startTask({ template: 'steps3', workspace: env.wsName });
    assert.equal((await settle(env.engine, t.id)).status, 'completed');
    await env.engine.shutdown();
    fs.writeFileSync(path.join(env.ws, 'runs'), 'a\n');

    // Rewrite the checkpoint as a crash in step b would have left it: a finished, b running
    // with a recorded process that no longer exists, c pending.
    const crashedAt = new Date().toISOString();
    second = await Engine.open({ home: env.home, config: env.config });
    await second.store.tasks.updateTask(t.id, (task) => {
      task.status = 'running';
      task.completed_at = null;
      task.current_step = 1;
      task.step_results = task.step_results.slice(0, 1);
      task.transitions = task.transitions.slice(0, 2);
      const [, b, c] = task.steps;
      Object.assign(b!, { status: 'running', attempts: 1, started_at: crashedAt, completed_at: null, process: { pid: 999_999_999, pgid: 999_999_999, start_ticks: 1, started_at: crashedAt } });
      Object.assign(c!, { status: 'pending', attempts: 0, started_at: null, completed_at: null });
    });
    const report = await second.start();
    assert.deepEqual(report.rerun, [t.id]);
    assert.equal(report.killed_groups, 0);
    const done = await settle(second, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['a#1:completed', 'b#1:interrupted', 'b#2:completed', 'c#1:completed']);
    assert.equal(fs.readFileSync(path.join(env.ws, 'runs'), 'utf8'), 'a\nb\nc\n');
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});

test('recovery: a crash between two steps (the first finished, the next not started) runs the rest without re-running anything', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, {
      name: 'between',
      steps: [
        { name: 'a', type: 'shell', run: 'echo a >> runs' },
        { name: 'b', type: 'shell', run: 'echo b >> runs' },
      ],
    });
    const t = await env.engine.startTask({ template: 'between', workspace: env.wsName });
    assert.equal((await settle(env.engine, t.id)).status, 'completed');
    await env.engine.shutdown();
    fs.writeFileSync(path.join(env.ws, 'runs'), 'a\n');
    second = await Engine.open({ home: env.home, config: env.config });
    await second.store.tasks.updateTask(t.id, (task) => {
      task.status = 'running';
      task.completed_at = null;
      task.current_step = 1;
      task.step_results = task.step_results.slice(0, 1);
      task.transitions = task.transitions.slice(0, 2);
      Object.assign(task.steps[1]!, { status: 'pending', attempts: 0, started_at: null, completed_at: null, process: null });
    });
    const report = await second.start();
    assert.deepEqual(report.requeued, [t.id]);
    assert.deepEqual(report.rerun, []);
    const done = await settle(second, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['a#1:completed', 'b#1:completed']);
    assert.equal(fs.readFileSync(path.join(env.ws, 'runs'), 'utf8'), 'a\nb\n');
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});

test('shutdown: a step that ends within the grace period is kept, no new step starts, and the next start goes on from there', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, {
      name: 'drain',
      steps: [
        { name: 'a', type: 'shell', timeout: '20s', run: 'touch started; until [ -f release ]; do sleep 0.02; done; echo a >> runs' },
        { name: 'b', type: 'shell', run: 'echo b >> runs' },
      ],
    });
    const t = await env.engine.startTask({ template: 'drain', workspace: env.wsName });
    await waitFor('step a to start', () => fs.existsSync(path.join(env.ws, 'started')));
    const stopping = env.engine.shutdown(20_000);
    assert.equal(env.engine.lifecycle, 'draining');
    await assert.rejects(env.engine.startTask({ template: 'drain', workspace: env.wsName }), (e: unknown) => isAtlasError(e, 'not_allowed') && e.retryable);
    fs.writeFileSync(path.join(env.ws, 'release'), '');
    await stopping;
    const onDisk = readTaskFile(env, env.wsName, t.id);
    assert.equal(onDisk.status, 'running');
    assert.equal(onDisk.current_step, 1);
    assert.deepEqual(resultSummary(onDisk), ['a#1:completed']);
    assert.equal(onDisk.steps[1]!.status, 'pending');
    assert.equal(fs.readFileSync(path.join(env.ws, 'runs'), 'utf8'), 'a\n');

    second = await Engine.open({ home: env.home, config: env.config });
    const report = await second.start();
    assert.deepEqual(report.requeued, [t.id]);
    const done = await settle(second, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['a#1:completed', 'b#1:completed']);
    assert.equal(fs.readFileSync(path.join(env.ws, 'runs'), 'utf8'), 'a\nb\n');
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});

test('shutdown: a step still running when the grace period ends is stopped, and re-runs at the next start', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, {
      name: 'cut',
      steps: [{ name: 'a', type: 'shell', run: 'echo "a $ATLAS_ATTEMPT" >> runs; [ "$ATLAS_ATTEMPT" != 1 ] || { sleep 100 & echo $! > sleep.pid; wait; }' }],
    });
    const t = await env.engine.startTask({ template: 'cut', workspace: env.wsName });
    const pidFile = path.join(env.ws, 'sleep.pid');
    await waitFor('step a to hang', () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'));
    await env.engine.shutdown(100);
    await assertDead(readPid(pidFile), 'the stopped step');
    const onDisk = readTaskFile(env, env.wsName, t.id);
    assert.equal(onDisk.status, 'running');
    assert.equal(onDisk.steps[0]!.status, 'running');
    assert.deepEqual(onDisk.step_results, []);

    second = await Engine.open({ home: env.home, config: env.config });
    assert.deepEqual((await second.start()).rerun, [t.id]);
    const done = await settle(second, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['a#1:interrupted', 'a#2:completed']);
    assert.equal(fs.readFileSync(path.join(env.ws, 'runs'), 'utf8'), 'a 1\na 2\n');
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});

test('recovery: a task awaiting approval keeps waiting across a restart', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, { name: 'ask', steps: [{ name: 'ok', type: 'human' }, { name: 'then', type: 'shell', run: 'touch then' }] });
    const t = await env.engine.startTask({ template: 'ask', workspace: env.wsName });
    assert.equal((await settle(env.engine, t.id)).status, 'awaiting_approval');
    await env.engine.shutdown();
    second = await Engine.open({ home: env.home, config: { ...TEST_CONFIG } });
    const report = await second.start();
    assert.deepEqual([...report.rerun, ...report.requeued, ...report.paused], []);
    assert.equal((await second.getTask(t.id)).status, 'awaiting_approval');
    await second.approve(t.id);
    assert.equal((await settle(second, t.id)).status, 'completed');
    assert.ok(fs.existsSync(path.join(env.ws, 'then')));
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});

test('a retry scheduled for later waits until then after a restart (next_attempt_at), instead of running at once', async () => {
  const env = await openEnv();
  let second: Engine | undefined;
  try {
    writeTemplate(env, {
      name: 'flaky',
      // Fails once; the retry waits 8-16 s (backoff with jitter in the upper half).
      steps: [{ name: 'a', type: 'shell', retries: { max: 1, backoff: '16s', max_backoff: '16s' }, run: 'date +%s%3N >> runs; [ "$ATLAS_ATTEMPT" != 1 ]' }],
    });
    const t = await env.engine.startTask({ template: 'flaky', workspace: env.wsName });
    const due = await waitFor('the retry to be scheduled', () => readTaskFile(env, env.wsName, t.id).steps[0]!.next_attempt_at ?? undefined, 30_000);
    await env.engine.shutdown(100);
    second = await Engine.open({ home: env.home, config: env.config });
    await second.start();
    const done = await settle(second, t.id, 60_000);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['a#1:failed', 'a#2:completed']);
    const second_started = Date.parse(done.step_results[1]!.started_at);
    assert.ok(second_started >= Date.parse(due), `attempt 2 started at ${done.step_results[1]!.started_at}, before its backoff ended at ${due}`);
    assert.equal(done.steps[0]!.next_attempt_at, null);
  } finally {
    await closeEnv(env, second ? [second] : []);
  }
});
