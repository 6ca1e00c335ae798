// The step environment rule (issue 18 item 2): steps start from the environment of the
// `atlas start` caller, captured at start and kept in env.json (0600) beside task.json, not
// from whichever command started the daemon; --env-clear and --env narrow it; the same
// environment is used again after a kill -9 and a restart by a daemon with another one.
// And reject feedback (item 4): {{ review.reason }}, ATLAS_REJECT_REASON and `show`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { FAKE_AGENT } from '../engine/helpers.js';
import { TestHome, assertGone, expectExit } from '../helpers/daemon.js';

const PRINT = `name: envprint
steps:
  - name: print
    type: shell
    run: echo "FOO=\${FOO-unset} BAR=\${BAR-unset} HOME=\${HOME-unset} T=\${T-unset}"
env:
  T: from-template
`;

const RERUN = `name: rerun
steps:
  - name: slow
    type: shell
    run: while [ ! -f go ]; do sleep 0.05; done
  - name: after
    type: shell
    run: echo "run FOO=$FOO" >> seen.txt
`;

const REVIEWED = `name: reviewed
steps:
  - name: agent
    type: ai
    prompt: "Do the work. Feedback: {{ review.reason }}"
  - name: note
    type: shell
    run: echo "reason=[$ATLAS_REJECT_REASON] ref=[{{ review.reason }}]" >> notes.txt
  - name: review
    type: human
    prompt: Look at notes.txt
`;

describe('step environment and reject feedback', () => {
  let h: TestHome;
  let ws: string;

  before(async () => {
    h = new TestHome();
    h.writeTemplate('envprint', PRINT);
    h.writeTemplate('rerun', RERUN);
    h.writeTemplate('reviewed', REVIEWED);
    fs.mkdirSync(h.home, { recursive: true });
    fs.writeFileSync(path.join(h.home, 'config.yaml'), `ai:\n  command: ${JSON.stringify(FAKE_AGENT)}\nstep_defaults:\n  kill_grace: 200ms\n`);
    ws = h.dir('ws');
    // The daemon is started by this command, with FOO=first in its environment.
    expectExit(await h.cli(['workspace', 'create', 'ws', '--path', ws], { env: { FOO: 'first', BAR: 'daemon-bar' } }), 0);
  });
  after(async () => {
    await h.dispose();
  });

  const output = async (t: TaskRecord) => (await h.ok(['artifacts', t.id, 'print.output.1.log'])).stdout;

  test("steps get the atlas start caller's environment, not the daemon's", async () => {
    const t = await h.json<TaskRecord>(['start', 'envprint', '-w', 'ws', '--wait'], { env: { FOO: 'second', BAR: undefined } });
    assert.equal(t.status, 'completed');
    assert.equal(await output(t), `FOO=second BAR=unset HOME=${process.env['HOME']} T=from-template\n`);
    // Kept beside task.json, readable only by the owner, and not in task.json.
    const file = path.join(h.taskDir('ws', t.id), 'env.json');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal((JSON.parse(fs.readFileSync(file, 'utf8')) as { env: Record<string, string> }).env['FOO'], 'second');
    assert.ok(!fs.readFileSync(path.join(h.taskDir('ws', t.id), 'task.json'), 'utf8').includes('second'));
  });

  test('--env-clear keeps only what --env names; --env KEY=VALUE sets one; the template env goes on top', async () => {
    const t = await h.json<TaskRecord>(['start', 'envprint', '-w', 'ws', '--wait', '--env-clear', '--env', 'FOO', '-e', 'BAR=given', '-e', 'T=caller'], { env: { FOO: 'kept' } });
    assert.equal(await output(t), 'FOO=kept BAR=given HOME=unset T=from-template\n');
    const missing = expectExit(await h.cli(['start', 'envprint', '-w', 'ws', '--env', 'NOPE_NOT_SET']), 2);
    assert.match(missing.stderr, /NOPE_NOT_SET is not set/);
  });

  test('after kill -9 and a restart by a daemon with another environment, later steps get the same environment', async () => {
    const t = await h.json<TaskRecord>(['start', 'rerun', '-w', 'ws'], { env: { FOO: 'caller' } });
    await h.waitStepProcess(t.id);
    const { pid } = await h.json<{ pid: number }>(['daemon', 'status']);
    process.kill(pid, 'SIGKILL');
    await assertGone(pid, 'the killed daemon');
    await h.startDaemon({ env: { FOO: 'restarter' } });
    fs.writeFileSync(path.join(ws, 'go'), '');
    const done = await h.waitSettled(t.id, 60_000);
    assert.equal(done.status, 'completed');
    assert.equal(fs.readFileSync(path.join(ws, 'seen.txt'), 'utf8'), 'run FOO=caller\n');
    fs.rmSync(path.join(ws, 'go'));
  });

  test('a rejection reason reaches the re-run agent and later steps, and show lists every rejection', async () => {
    const t = await h.json<TaskRecord>(['start', 'reviewed', '-w', 'ws']);
    assert.equal((await h.waitSettled(t.id)).status, 'awaiting_approval');
    assert.match(fs.readFileSync(path.join(ws, 'agent-output.md'), 'utf8'), /Feedback: \n/);
    expectExit(await h.cli(['reject', t.id, '--reason', 'add a test; it\'s "untested"', '--retry-from', 'agent']), 0);
    assert.equal((await h.waitSettled(t.id)).status, 'awaiting_approval');
    assert.match(fs.readFileSync(path.join(ws, 'agent-output.md'), 'utf8'), /Feedback: add a test; it's "untested"\n/);
    assert.equal(
      fs.readFileSync(path.join(ws, 'notes.txt'), 'utf8'),
      'reason=[] ref=[]\n' + `reason=[add a test; it's "untested"] ref=[add a test; it's "untested"]\n`,
    );
    expectExit(await h.cli(['reject', t.id, '--reason', 'still wrong']), 0);
    const shown = (await h.ok(['show', t.id])).stdout;
    assert.match(shown, /rejections\n {2}1\. \S+ review: add a test; it's "untested" \(ran again from agent\)\n {2}2\. \S+ review: still wrong \(ended the task\)/);
    const rec = await h.getTask(t.id);
    assert.deepEqual(rec.rejections?.map((r) => [r.reason, r.retry_from]), [[`add a test; it's "untested"`, 'agent'], ['still wrong', null]]);
  });
});
