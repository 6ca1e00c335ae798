// Follow that informs (issue 18 item 5): on a terminal a quiet step gets a spinner with
// step i/N and its elapsed time (wiped before any output); Ctrl-C stops following, says the
// task keeps running and how to re-attach; a task left waiting on a human step shows the
// approve and reject commands.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ProgressLine, QUIET_MS } from '../../src/cli/progress.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, waitFor } from '../helpers/daemon.js';

function fakeTerminal(tty: boolean) {
  const writes: string[] = [];
  let now = 10_000;
  const stream = { isTTY: tty, write: (s: string) => (writes.push(s), true) };
  const line = new ProgressLine(stream, tty, () => now);
  return { writes, line, advance: (ms: number) => (now += ms) };
}

test('the progress line: only after a quiet second, with i/N and elapsed; wiped before output; never off a terminal', () => {
  const t = fakeTerminal(true);
  t.line.stepStarted('step 2/5 build', 10_000);
  assert.equal(t.line.tick(), undefined, 'drawn before the step was quiet');
  t.advance(QUIET_MS);
  assert.match(t.line.tick() ?? '', /^⠋ step 2\/5 build 1s$/);
  t.advance(64_000);
  assert.match(t.line.tick() ?? '', /^⠙ step 2\/5 build 1m05s$/);
  assert.equal(t.writes.at(-1), '\r\x1b[2K⠙ step 2/5 build 1m05s');
  t.line.output();
  assert.equal(t.writes.at(-1), '\r\x1b[2K', 'output did not wipe the line first');
  assert.equal(t.line.tick(), undefined, 'drawn right after output');
  t.line.stop();

  const pipe = fakeTerminal(false);
  pipe.line.stepStarted('step 1/1 x', 0);
  pipe.advance(5000);
  assert.equal(pipe.line.tick(), undefined);
  pipe.line.stop();
  assert.deepEqual(pipe.writes, []);
});

describe('follow on the CLI', () => {
  let h: TestHome;
  before(async () => {
    h = new TestHome({ templates: ['sleeper', 'review'] });
    await h.startDaemon();
    await h.createWorkspaces(['s', 'r']);
  });
  after(async () => {
    await h.dispose();
  });

  test('Ctrl-C stops following, the task keeps running, and the message says how to re-attach', async () => {
    const f = h.spawn(['start', 'sleeper', '-w', 's', '--follow']);
    const id = await waitFor('the follower to name the task', () => /^(task-\S+):/m.exec(f.peek().stderr)?.[1], 60_000);
    await h.waitStepProcess(id);
    await waitFor('the step to be announced', () => f.peek().stderr.includes('step 1/1 nap'), 60_000);
    f.child.kill('SIGINT');
    const r = await f.result;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`task ${id} keeps running in the daemon\\. Re-attach with: atlas logs ${id} -f`));
    assert.equal((await h.getTask(id)).status, 'running');
    await h.ok(['cancel', id]);
  });

  test('a task that stops at a human step shows it waiting (exit 6, not a failure) with the approve and reject commands', async () => {
    // Exit 6: stopped at a human step, which scripts must tell from a failure (1).
    const r = expectExit(await h.cli(['start', 'review', '-w', 'r', '--follow']), 6);
    const id = /^(task-\S+):/m.exec(r.stderr)?.[1];
    assert.ok(id, r.stderr);
    // The human step is not shown as finished ("✓ review 1ms") while it waits.
    assert.doesNotMatch(r.stderr, /✓ review/);
    assert.match(r.stderr, /⏸ review waiting for approval/);
    const logs = expectExit(await h.cli(['logs', id]), 0);
    assert.match(logs.stdout, /⏸ review waiting for approval/);
    assert.doesNotMatch(logs.stdout, /✓ review/);
    expectExit(await h.cli(['start', 'review', '-w', 's', '--wait']), 6);
    assert.match(r.stderr, /waiting for approval at step review: Look at made\.txt/);
    assert.match(r.stderr, new RegExp(`approve: {2}atlas approve ${id}`));
    assert.match(r.stderr, new RegExp(`reject: {3}atlas reject ${id} --reason "\\.\\.\\." \\[--retry-from <step>\\]`));
    assert.equal((await h.getTask(id)).status, 'awaiting_approval' as TaskRecord['status']);
  });
});
