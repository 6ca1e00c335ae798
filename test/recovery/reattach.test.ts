// Steps that outlive the daemon: a kill -9 of the daemon (or `daemon restart`) while a shell
// step runs leaves the step running; the next daemon re-attaches to it (same pid), or, when
// it ended while no daemon ran, records the result its gate left. Nothing is run twice.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, assertGone, expectExit, groupAlive, homeProcesses, isGone, waitFor } from '../helpers/daemon.js';

const TEMPLATES: Record<string, string> = {
  // Prints, then waits for a file named `gate` in the workspace, prints again, marks once.
  gated: `name: gated
steps:
  - name: first
    type: shell
    run: echo first-step
  - name: long
    type: shell
    run: echo before-$$; until [ -f gate ]; do sleep 0.05; done; echo after-gate; echo done >> marks
  - name: last
    type: shell
    run: echo last-step
`,
  // A tree (a background sleep) that outlives nothing: the 3 s timeout counts from its start.
  slow: `name: slow
steps:
  - name: hang
    type: shell
    timeout: 3s
    run: sleep 300 & echo $! > child.pid; echo started; wait
`,
};

async function killDaemon(h: TestHome): Promise<void> {
  const pid = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
  process.kill(pid, 'SIGKILL');
  await waitFor('the killed daemon to exit', () => !homeProcesses(h.home).includes(pid));
}

function marks(dir: string): string[] {
  try {
    return fs.readFileSync(path.join(dir, 'marks'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function stepProcess(t: TaskRecord): { pid: number; pgid: number } {
  const p = t.steps[t.current_step]?.process;
  assert.ok(p, `task ${t.id} has no step process recorded`);
  return p;
}

async function outputOf(h: TestHome, id: string): Promise<string> {
  const r = await h.ok(['logs', id]);
  return r.stdout;
}

describe('re-attach after the daemon dies', () => {
  let h: TestHome;
  let dirs: Record<string, string>;

  before(async () => {
    h = new TestHome();
    for (const [name, text] of Object.entries(TEMPLATES)) h.writeTemplate(name, text);
    await h.startDaemon();
    dirs = await h.createWorkspaces(['a', 'b', 'c', 'd', 'e', 'f']);
  });
  after(async () => {
    await h.dispose();
  });

  test('kill -9 while a step runs; it finishes while no daemon runs; start: its result and output are recorded, it is not run again', async () => {
    const id = (await h.json<TaskRecord>(['start', 'gated', '-w', 'a'])).id;
    const running = await h.waitTask(id, 'the long step runs', (t) => t.current_step === 1 && t.steps[1]!.process != null);
    const { pid } = stepProcess(running);
    await killDaemon(h);
    // The step goes on without any daemon, prints and ends.
    fs.writeFileSync(path.join(dirs['a']!, 'gate'), '');
    await waitFor('the step to end while no daemon runs', () => isGone(pid) && marks(dirs['a']!).length === 1);

    await h.startDaemon();
    const done = await h.waitSettled(id);
    assert.equal(done.status, 'completed', `task ended ${done.status}: ${done.error}`);
    assert.deepEqual(marks(dirs['a']!), ['done'], 'the step ran again');
    const long = done.step_results.filter((r) => r.step_name === 'long');
    assert.equal(long.length, 1, `attempts of the long step: ${JSON.stringify(long)}`);
    assert.equal(long[0]!.status, 'completed');
    assert.equal(long[0]!.exit_code, 0);
    assert.equal(typeof long[0]!.cpu_ms, 'number');
    const out = await outputOf(h, id);
    assert.match(out, new RegExp(`before-${pid}`));
    assert.match(out, /after-gate/, 'what it printed while no daemon ran is in the log');
    assert.match(fs.readFileSync(path.join(h.taskDir('a', id), 'artifacts', 'long.output.1.log'), 'utf8'), new RegExp(`^before-${pid}\\nafter-gate\\n$`));
    // show has the attempt's CPU time.
    assert.match((await h.ok(['show', id])).stdout, /CPU/);
    // The attempt's run files are gone once its result is recorded.
    assert.deepEqual(fs.readdirSync(path.join(h.taskDir('a', id), 'run')), []);
  });

  test('kill -9 while a step runs, restart at once: the same process keeps running, finishes once, and logs -f shows its output', async () => {
    const id = (await h.json<TaskRecord>(['start', 'gated', '-w', 'b'])).id;
    const running = await h.waitTask(id, 'the long step runs', (t) => t.current_step === 1 && t.steps[1]!.process != null);
    const { pid } = stepProcess(running);
    await killDaemon(h);
    await h.startDaemon();
    const follower = h.spawn(['logs', id, '-f'], { timeoutMs: 60_000 });
    await waitFor('the follower to show what the step printed before the crash', () => follower.peek().stdout.includes(`before-${pid}`));
    assert.ok(!isGone(pid), 'the step process was stopped');
    const attached = await h.getTask(id);
    assert.equal(stepProcess(attached).pid, pid);
    fs.writeFileSync(path.join(dirs['b']!, 'gate'), '');
    const r = expectExit(await follower.result, 0);
    assert.match(r.stdout, /after-gate/);
    assert.match(r.stdout, /last-step/);
    const done = await h.waitSettled(id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(marks(dirs['b']!), ['done']);
    assert.equal(done.step_results.filter((x) => x.step_name === 'long').length, 1);
  });

  test('a re-attached step whose timeout passes is killed, tree and all, and recorded as timed out', async () => {
    const id = (await h.json<TaskRecord>(['start', 'slow', '-w', 'c'])).id;
    const running = await h.waitStepProcess(id);
    const { pid } = stepProcess(running);
    const childFile = path.join(dirs['c']!, 'child.pid');
    await waitFor('the background sleep to start', () => fs.existsSync(childFile) && fs.readFileSync(childFile, 'utf8').trim() !== '');
    const child = Number(fs.readFileSync(childFile, 'utf8'));
    await killDaemon(h);
    await h.startDaemon();
    const done = await h.waitSettled(id);
    assert.equal(done.status, 'failed');
    const results = done.step_results;
    assert.equal(results.length, 1, JSON.stringify(results));
    assert.equal(results[0]!.status, 'timed_out');
    await assertGone(pid, 'the step shell');
    await assertGone(child, 'the background sleep');
    assert.equal(groupAlive(pid), false);
  });

  test('a re-attached step can be canceled: its tree is killed and the task is abandoned', async () => {
    const id = (await h.json<TaskRecord>(['start', 'gated', '-w', 'd'])).id;
    const running = await h.waitTask(id, 'the long step runs', (t) => t.current_step === 1 && t.steps[1]!.process != null);
    const { pid } = stepProcess(running);
    await killDaemon(h);
    await h.startDaemon();
    await h.waitTask(id, 'the step to be re-attached', (t) => t.status === 'running' && t.steps[1]!.process?.pid === pid);
    await h.ok(['cancel', id]);
    const done = await h.waitSettled(id);
    assert.equal(done.status, 'abandoned');
    await assertGone(pid, 'the canceled step');
    assert.deepEqual(marks(dirs['d']!), []);
  });

  test('daemon restart and daemon stop --detach leave running steps running; the new daemon re-attaches', async () => {
    const id = (await h.json<TaskRecord>(['start', 'gated', '-w', 'e'])).id;
    const running = await h.waitTask(id, 'the long step runs', (t) => t.current_step === 1 && t.steps[1]!.process != null);
    const { pid } = stepProcess(running);
    const before = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
    const r = expectExit(await h.cli(['daemon', 'restart']), 0);
    assert.match(r.stdout, /started the atlas daemon/);
    const now = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
    assert.notEqual(now, before);
    assert.ok(!isGone(pid), 'the restart stopped the step');

    // stop --detach: no daemon, the step still runs.
    const stopped = await h.json<{ stopped: boolean; pid: number }>(['daemon', 'stop', '--detach']);
    await assertGone(stopped.pid, 'the stopped daemon');
    assert.ok(!isGone(pid), 'stop --detach stopped the step');
    await h.startDaemon();
    fs.writeFileSync(path.join(dirs['e']!, 'gate'), '');
    const done = await h.waitSettled(id);
    assert.equal(done.status, 'completed', `task ended ${done.status}: ${done.error}`);
    assert.deepEqual(marks(dirs['e']!), ['done']);
    const long = done.step_results.filter((x) => x.step_name === 'long');
    assert.equal(long.length, 1, JSON.stringify(long));
    assert.equal(long[0]!.status, 'completed');
  });
});
