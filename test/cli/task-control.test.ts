// Controlling tasks from the CLI (DESIGN §3, §7): cancel (kills the running step's process
// tree), approve, reject --reason [--retry-from], resume; and the exit codes: 2 bad usage or
// input, 4 not found (with the closest id suggested), 5 not allowed in the task's status.
// Also: every query command's --json prints only JSON on stdout.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord, TaskSummary } from '../../src/store/records.js';
import { TestHome, assertGone, expectExit, groupAlive, parseStdout, waitFor } from '../helpers/daemon.js';
import { editDistance as distance } from '../../src/util/distance.js';

describe('atlas cancel, approve, reject, resume and exit codes', () => {
  let h: TestHome;
  const dirs: Record<string, string> = {};

  before(async () => {
    h = new TestHome({ templates: ['quick', 'sleeper', 'review', 'marker'] });
    await h.startDaemon();
    Object.assign(dirs, await h.createWorkspaces(['long', 'rev1', 'rev2', 'mark']));
  });
  after(async () => {
    await h.dispose();
  });

  test('cancel of a running long sleep: abandoned, and its process is gone', async () => {
    const task = await h.json<TaskRecord>(['start', 'sleeper', '-w', 'long']);
    const running = await h.waitStepProcess(task.id);
    const proc = running.steps[0]!.process!;
    assert.equal(groupAlive(proc.pgid), true);

    const r = expectExit(await h.cli(['cancel', task.id]), 0);
    assert.match(r.stdout, new RegExp(`${task.id} canceled: now abandoned`));
    await assertGone(proc.pid, 'the canceled step');
    await waitFor(`process group ${proc.pgid} to be gone`, () => !groupAlive(proc.pgid));
    const t = h.readTaskFile('long', task.id);
    assert.equal(t.status, 'abandoned');
    assert.equal(t.transitions.at(-1)?.to_status, 'abandoned');
    assert.notEqual(t.step_results.at(-1)?.status, 'completed', 'a killed step was recorded as a success');

    const again = expectExit(await h.cli(['cancel', task.id]), 5);
    assert.match(again.stderr, /already abandoned/);
    expectExit(await h.cli(['resume', task.id]), 5);
  });

  test('approve: the task waiting on a human step goes on and completes', async () => {
    const task = await h.json<TaskRecord>(['start', 'review', '-w', 'rev1']);
    const waiting = await h.waitSettled(task.id);
    assert.equal(waiting.status, 'awaiting_approval');
    const shown = expectExit(await h.cli(['show', task.id]), 0);
    assert.match(shown.stdout, /waiting for approval: Look at made\.txt/);
    expectExit(await h.cli(['resume', task.id]), 5);

    const approved = await h.json<TaskRecord>(['approve', task.id]);
    assert.notEqual(approved.status, 'awaiting_approval');
    const done = await h.waitSettled(task.id);
    assert.equal(done.status, 'completed');
    assert.equal(fs.readFileSync(path.join(dirs['rev1']!, 'shipped.txt'), 'utf8'), 'shipped\n');

    const r = expectExit(await h.cli(['approve', task.id]), 5);
    assert.match(r.stderr, /completed, not awaiting_approval/);
  });

  test('reject --retry-from runs the task again from that step; reject --reason ends it', async () => {
    const task = await h.json<TaskRecord>(['start', 'review', '-w', 'rev2']);
    assert.equal((await h.waitSettled(task.id)).status, 'awaiting_approval');

    expectExit(await h.cli(['reject', task.id]), 2); // --reason is required
    expectExit(await h.cli(['reject', task.id, '--reason', 'x', '--retry-from', 'nosuch']), 2);
    expectExit(await h.cli(['reject', task.id, '--reason', 'x', '--retry-from', 'ship']), 2);

    const retried = expectExit(await h.cli(['reject', task.id, '--reason', 'not yet', '--retry-from', 'make']), 0);
    assert.match(retried.stdout, new RegExp(`${task.id} pending \\(running again from make\\)`));
    const again = await h.waitSettled(task.id);
    assert.equal(again.status, 'awaiting_approval');
    assert.equal(again.steps[0]!.attempts, 2);
    assert.equal(fs.readFileSync(path.join(dirs['rev2']!, 'made.txt'), 'utf8'), 'made 1\nmade 2\n');

    const rejected = await h.json<TaskRecord>(['reject', task.id, '--reason', 'wrong approach']);
    assert.equal(rejected.status, 'rejected');
    const t = h.readTaskFile('rev2', task.id);
    assert.equal(t.status, 'rejected');
    assert.match(t.transitions.at(-1)?.reason ?? '', /wrong approach/);
    assert.equal(fs.existsSync(path.join(dirs['rev2']!, 'shipped.txt')), false);
    expectExit(await h.cli(['reject', task.id, '--reason', 'again']), 5);
    expectExit(await h.cli(['approve', task.id]), 5);
  });

  test('resume re-runs the failed step', async () => {
    const r = expectExit(await h.cli(['start', 'marker', '-w', 'mark', '--wait', '--json']), 1);
    const failed = parseStdout<TaskRecord>(r);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.step_results[0]?.exit_code, 4);
    expectExit(await h.cli(['approve', failed.id]), 5);

    fs.writeFileSync(path.join(dirs['mark']!, 'marker'), '');
    const resumed = expectExit(await h.cli(['resume', failed.id]), 0);
    assert.match(resumed.stdout, new RegExp(`${failed.id} resumed: now `));
    const done = await h.waitSettled(failed.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.steps[0]!.attempts, 2);
    assert.deepEqual(done.step_results.map((x) => `${x.step_name}#${x.attempt}:${x.status}`), ['check#1:failed', 'check#2:completed', 'after#1:completed']);
    expectExit(await h.cli(['resume', failed.id]), 5);
  });

  test('exit 4 for an unknown task id, with the closest id suggested', async () => {
    const list = await h.json<TaskSummary[]>(['list']);
    const known = new Set(list.map((t) => t.id));
    const base = list[0]!.id;
    const typo = [...'0123456789'].map((d) => base.slice(0, -1) + d).find((x) => !known.has(x))!;
    const best = Math.min(...list.map((t) => distance(typo, t.id)));
    const cmds = [['show', typo], ['logs', typo], ['cancel', typo], ['approve', typo], ['artifacts', typo]];
    const results = await Promise.all(cmds.map((cmd) => h.cli(cmd)));
    for (const res of results) {
      const r = expectExit(res, 4);
      const m = /did you mean (task-\S+)\?/.exec(r.stderr);
      assert.ok(m, `no suggestion in: ${r.stderr}`);
      assert.ok(known.has(m[1]!), `suggested ${m[1]}, which does not exist`);
      assert.equal(distance(typo, m[1]!), best, `suggested ${m[1]}, not a closest id to ${typo}`);
    }
    // Nothing close: no suggestion.
    const far = expectExit(await h.cli(['show', 'task-19990101-000000-777']), 4);
    assert.doesNotMatch(far.stderr, /did you mean/);
  });

  test('exit 2 for bad usage and invalid input', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['start', 'quick'], /workspace/], // -w missing
      [['start', 'demo', '-w', 'long', '-i', 'nosuch=1'], /no input 'nosuch'/],
      [['start', 'demo', '-w', 'long', '-i', 'novalue'], /key=value/],
      [['start', 'quick', '-w', 'Bad/Name'], /invalid workspace name/],
      [['workspace', 'create', 'Bad/Name', '--path', h.root], /invalid workspace name/],
      [['show', 'not-a-task-id'], /invalid task id/],
      [['no-such-command'], /./],
      [['list', '--limit', 'many'], /./],
    ];
    const results = await Promise.all(cases.map(([args]) => h.cli(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = expectExit(results[i]!, 2);
      assert.match(r.stderr, message, `atlas ${args.join(' ')}`);
    }
  });

  test('exit 4 for an unknown workspace or template', async () => {
    const [ws, tpl, file] = await Promise.all([
      h.cli(['start', 'quick', '-w', 'nowhere']),
      h.cli(['start', 'no-such-template', '-w', 'long']),
      h.cli(['start', path.join(h.root, 'missing.yaml'), '-w', 'long']),
    ]);
    assert.match(expectExit(ws, 4).stderr, /nowhere/);
    assert.match(expectExit(tpl, 4).stderr, /no template no-such-template/);
    assert.match(expectExit(file, 4).stderr, /missing\.yaml/);
    assert.equal((await h.listTasks()).length, 4, 'a refused start created a task');
  });

  test('--json prints only JSON on stdout for every query command', async () => {
    const id = (await h.json<TaskSummary[]>(['list', '--status', 'completed']))[0]!.id;
    const artifact = (await h.json<Array<{ name: string }>>(['artifacts', id]))[0]!.name;
    const step = (await h.json<{ steps: Array<{ name: string }> }>(['show', id])).steps[0]!.name;
    const tpl = path.join(h.home, 'templates', 'quick.yaml');
    const commands = [
      ['daemon', 'status'],
      ['daemon', 'start'],
      ['workspace', 'list'],
      ['workspace', 'show', 'long'],
      ['template', 'list'],
      ['template', 'show', 'quick'],
      ['template', 'validate', tpl],
      ['list'],
      ['list', '-w', 'rev1', '--status', 'completed', '--template', 'review', '--limit', '5'],
      ['show', id],
      ['logs', id],
      ['logs', id, '--step', step],
      ['artifacts', id],
      ['artifacts', id, artifact],
    ];
    const results = await Promise.all(commands.map((cmd) => h.cli([...cmd, '--json'])));
    for (const [i, cmd] of commands.entries()) {
      const v = parseStdout<unknown>(expectExit(results[i]!, 0));
      assert.notEqual(v, null, `atlas ${cmd.join(' ')} --json printed null`);
    }
    // A step the task does not have is not found, and the hint names its steps, not the task again.
    const noStep = expectExit(await h.cli(['logs', id, '--step', 'nosuch']), 4);
    assert.match(noStep.stderr, /has no step nosuch; its steps: /);
    assert.doesNotMatch(noStep.stderr, /did you mean task-/);
    // An artifact name with a typo: the hint names the close artifact, not the task id.
    const typo = artifact.slice(0, -1);
    const noArtifact = expectExit(await h.cli(['artifacts', id, typo]), 4);
    assert.match(noArtifact.stderr, new RegExp(`has no artifact ${typo.replace(/\./g, '\\.')} \\(did you mean ${artifact.replace(/\./g, '\\.')}\\?\\)`));
    assert.doesNotMatch(noArtifact.stderr, /did you mean task-/);
    await h.stopDaemon();
  });
});
