// git steps in temporary repositories: commit records files_changed and the commit sha;
// push reaches a local bare repository; branch switches; a push failure leads to gh_failed,
// a local failure (commit, not a repository) to failed with git's message.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { git, initRepo, resultSummary, run, withEnv, writeTemplate } from '../engine/helpers.js';

test('git commit: stages everything, commits the message, records files_changed and the sha', async () => {
  await withEnv({ git: true }, async (env) => {
    writeTemplate(env, {
      name: 'gc',
      inputs: { what: { required: true } },
      steps: [
        { name: 'edit', type: 'shell', run: 'mkdir -p sub && echo a > a.txt && echo b > sub/b.txt' },
        { name: 'commit', type: 'git', action: 'commit', message: 'add {{ inputs.what }}\n\nmade by atlas' },
        { name: 'again', type: 'git', action: 'commit', message: 'nothing to add' },
      ],
    });
    const t = await run(env, 'gc', { what: "files 'with' $(quotes)" });
    assert.equal(t.status, 'completed', t.error ?? '');
    const r = t.step_results[1]!;
    assert.equal(r.status, 'completed');
    assert.deepEqual([...r.files_changed].sort(), ['a.txt', 'sub/b.txt']);
    const head = git(env.ws, 'rev-parse', 'HEAD');
    assert.match(head, /^[0-9a-f]{40}$/);
    assert.equal(r.commit, head);
    assert.equal(git(env.ws, 'log', '-1', '--format=%B'), "add files 'with' $(quotes)\n\nmade by atlas");
    assert.equal(git(env.ws, 'status', '--porcelain'), '');
    // A commit with nothing staged succeeds without a commit.
    const r2 = t.step_results[2]!;
    assert.equal(r2.status, 'completed');
    assert.equal(r2.commit, null);
    assert.deepEqual(r2.files_changed, []);
    assert.equal(git(env.ws, 'rev-list', '--count', 'HEAD'), '1');
    // files_changed is in task.json too.
    assert.deepEqual([...(await env.engine.getTask(t.id)).step_results[1]!.files_changed].sort(), ['a.txt', 'sub/b.txt']);
  });
});

test('git push: pushes the current branch to a local bare repository; branch switches', async () => {
  await withEnv({ git: true }, async (env) => {
    const remote = path.join(env.root, 'remote.git');
    initRepo(remote, true);
    git(env.ws, 'remote', 'add', 'origin', remote);
    writeTemplate(env, {
      name: 'gp',
      steps: [
        { name: 'edit', type: 'shell', run: 'echo one > one.txt' },
        { name: 'commit', type: 'git', action: 'commit', message: 'one' },
        { name: 'push', type: 'git', action: 'push' },
        { name: 'branch', type: 'git', action: 'branch', branch: 'feature-x' },
        { name: 'edit2', type: 'shell', run: 'echo two > two.txt' },
        { name: 'commit2', type: 'git', action: 'commit', message: 'two' },
        { name: 'push2', type: 'git', action: 'push' },
      ],
    });
    const t = await run(env, 'gp');
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.equal(git(env.ws, 'rev-parse', '--abbrev-ref', 'HEAD'), 'feature-x');
    const local = git(env.ws, 'rev-parse', 'HEAD');
    assert.equal(git(remote, 'rev-parse', 'refs/heads/feature-x'), local);
    assert.equal(git(remote, 'rev-parse', 'refs/heads/main'), t.step_results[1]!.commit);
    assert.equal(t.step_results[5]!.commit, local);
    assert.deepEqual(t.step_results[5]!.files_changed, ['two.txt']);
  });
});

test('git: a missing remote is gh_failed unless the push is optional; a non-repository is a plain failure', async () => {
  await withEnv({ git: true }, async (env) => {
    writeTemplate(env, {
      name: 'nopush',
      steps: [
        { name: 'maybe', type: 'git', action: 'push', remote: 'upstream', optional: true },
        { name: 'push', type: 'git', action: 'push', remote: 'upstream' },
      ],
    });
    const t = await run(env, 'nopush');
    assert.equal(t.status, 'gh_failed');
    assert.deepEqual(resultSummary(t), ['maybe#1:completed', 'push#1:failed']);
    assert.match(t.step_results[1]!.error ?? '', /no git remote 'upstream'/);
  });
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'norepo', steps: [{ name: 'commit', type: 'git', action: 'commit', message: 'x' }] });
    fs.writeFileSync(path.join(env.ws, 'file.txt'), 'x');
    const t = await run(env, 'norepo');
    assert.equal(t.status, 'failed');
    assert.match(t.step_results[0]!.error ?? '', /not a git repository/);
  });
});

test('git: a local commit that fails is failed (not gh_failed), with what git said in the error', async () => {
  await withEnv({ git: true }, async (env) => {
    const hook = path.join(env.ws, '.git', 'hooks', 'pre-commit');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    fs.writeFileSync(hook, '#!/bin/sh\necho "pre-commit: lint found 3 problems" >&2\nexit 1\n', { mode: 0o755 });
    writeTemplate(env, { name: 'hooked', steps: [{ name: 'commit', type: 'git', action: 'commit', message: 'x' }] });
    fs.writeFileSync(path.join(env.ws, 'file.txt'), 'x');
    const t = await run(env, 'hooked');
    assert.equal(t.status, 'failed');
    assert.equal(t.step_results[0]!.status, 'failed');
    assert.match(t.step_results[0]!.error ?? '', /^git commit exited with code 1: pre-commit: lint found 3 problems$/);
    assert.match(t.error ?? '', /git commit exited with code 1: pre-commit: lint found 3 problems/);
  });
});
