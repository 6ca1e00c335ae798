// Every built-in template (templates/*.yaml) runs end to end through the in-process API:
// the agent ones against the fake agent, human steps approved with engine.approve, git
// ones in a temporary repository, ci with a command that exits 0.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ValidationReport } from '../../src/steps/validation.js';
import { FAKE_AGENT, git, initRepo, readArtifact, resultSummary, run, settle, withEnv } from '../engine/helpers.js';

test('built-in demo runs to completion', async () => {
  await withEnv({}, async (env) => {
    const t = await run(env, 'demo', { greeting: "hi 'there' $(touch pwned)" });
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.deepEqual(resultSummary(t), ['prepare#1:completed', 'count#1:completed', 'pause#1:completed', 'validation#1:completed', 'report#1:completed']);
    assert.equal(fs.readFileSync(path.join(env.ws, 'demo-output', 'greeting.txt'), 'utf8'), "hi 'there' $(touch pwned)\n");
    assert.equal(fs.existsSync(path.join(env.ws, 'pwned')), false);
    const report = JSON.parse(readArtifact(env, t, 'validation.1.json')) as ValidationReport;
    assert.equal(report.passed, true);
    assert.ok(t.steps[2]!.deadline, 'the wait stored its deadline');
    assert.match(readArtifact(env, t, 'report.output.1.log'), /demo finished: hi 'there'/);
  });
});

test('built-in validate passes and fails with the checks input', async () => {
  await withEnv({}, async (env) => {
    fs.writeFileSync(path.join(env.ws, 'marker'), '');
    const ok = await run(env, 'validate', { checks: 'test -f marker && echo checked' });
    assert.equal(ok.status, 'completed');
    const report = JSON.parse(readArtifact(env, ok, 'validation.1.json')) as ValidationReport;
    assert.equal(report.commands[0]!.output_tail, 'checked\n');
    const bad = await run(env, 'validate', { checks: 'test -f missing' });
    assert.equal(bad.status, 'validation_failed');
    await assert.rejects(env.engine.startTask({ template: 'validate', workspace: env.wsName }), /needs input 'checks'/);
  });
});

for (const name of ['task', 'bugfix', 'feature'] as const) {
  test(`built-in ${name}: agent, checks, commit, review approved`, async () => {
    await withEnv({ git: true, config: { ai_command: FAKE_AGENT } }, async (env) => {
      fs.writeFileSync(path.join(env.ws, 'README'), 'project\n');
      git(env.ws, 'add', '-A');
      git(env.ws, 'commit', '-q', '-m', 'initial');
      const t = await run(env, name, { description: `do the ${name} thing`, checks: 'test -s agent-output.md' });
      assert.equal(t.status, 'awaiting_approval', t.error ?? '');
      assert.deepEqual(resultSummary(t), ['agent#1:completed', 'validation#1:completed', 'commit#1:completed', 'review#1:completed']);
      assert.match(fs.readFileSync(path.join(env.ws, 'agent-output.md'), 'utf8'), new RegExp(`do the ${name} thing`));
      assert.match(readArtifact(env, t, 'agent.answer.1.md'), /^ANSWER: /);
      const commit = t.step_results[2]!;
      assert.deepEqual([...commit.files_changed].sort(), ['agent-calls.log', 'agent-output.md']);
      assert.equal(commit.commit, git(env.ws, 'rev-parse', 'HEAD'));
      assert.equal(git(env.ws, 'log', '-1', '--format=%s'), `atlas: ${name}`);
      await env.engine.approve(t.id);
      const done = await settle(env.engine, t.id);
      assert.equal(done.status, 'completed');
    });
  });
}

test('built-in task: reject with --retry-from agent runs the agent again', async () => {
  await withEnv({ git: true, config: { ai_command: FAKE_AGENT } }, async (env) => {
    const t = await run(env, 'task', { description: 'first try', message: 'custom message' });
    assert.equal(t.status, 'awaiting_approval', t.error ?? '');
    assert.equal(git(env.ws, 'log', '-1', '--format=%s'), 'custom message');
    await env.engine.reject(t.id, 'not yet', 'agent');
    const again = await settle(env.engine, t.id);
    assert.equal(again.status, 'awaiting_approval');
    assert.equal(fs.readFileSync(path.join(env.ws, 'agent-calls.log'), 'utf8'), `${t.id} agent 1\n${t.id} agent 2\n`);
    assert.ok(again.step_results.some((r) => r.artifacts.includes('agent.answer.2.md')));
    assert.equal(git(env.ws, 'rev-list', '--count', 'HEAD'), '2');
    await env.engine.reject(t.id, 'no');
    assert.equal((await env.engine.getTask(t.id)).status, 'rejected');
  });
});

test('built-in commit: validates, commits and pushes to a bare remote', async () => {
  await withEnv({ git: true }, async (env) => {
    const remote = path.join(env.root, 'remote.git');
    initRepo(remote, true);
    git(env.ws, 'remote', 'add', 'origin', remote);
    fs.writeFileSync(path.join(env.ws, 'change.txt'), 'changed\n');
    const t = await run(env, 'commit', { message: 'a change', checks: 'test -f change.txt', push: 'yes' });
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.deepEqual(t.step_results[1]!.files_changed, ['change.txt']);
    const head = git(env.ws, 'rev-parse', 'HEAD');
    assert.equal(t.step_results[1]!.commit, head);
    assert.equal(git(remote, 'rev-parse', 'refs/heads/main'), head);

    fs.writeFileSync(path.join(env.ws, 'second.txt'), 'x\n');
    const local = await run(env, 'commit', { message: 'no push' });
    assert.equal(local.status, 'completed');
    assert.match(readArtifact(env, local, 'push.output.1.log'), /push skipped/);
    assert.notEqual(git(remote, 'rev-parse', 'refs/heads/main'), git(env.ws, 'rev-parse', 'HEAD'));
  });
});

test('built-in ci: a status command that exits 0 passes at the first poll', async () => {
  await withEnv({}, async (env) => {
    const t = await run(env, 'ci', { command: 'echo all green; exit 0' }, 10_000);
    assert.equal(t.status, 'completed');
    assert.equal(t.step_results[0]!.exit_code, 0);
    assert.ok(t.steps[0]!.deadline);
    const failing = await run(env, 'ci', { command: 'exit 1' }, 10_000);
    assert.equal(failing.status, 'ci_failed');
  });
});
