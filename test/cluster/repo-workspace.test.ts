// A --repo URL workspace runs on any daemon of the database: a daemon that did not make it
// (its maker stopped) clones the repository under its own home when it first runs one of its
// tasks, and the steps see the repository's files there, on the workspace's branch.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { fileDatabase } from '../helpers/pg.js';
import { ClusterHomes } from './helpers.js';

const db = await fileDatabase('repo_ws');

const TEMPLATE = [
  'name: look',
  'inputs:',
  '  log: { required: true }',
  'steps:',
  '  - name: look',
  '    type: shell',
  '    run: echo "$ATLAS_TASK_ID $(cat hello.txt) $(git rev-parse --abbrev-ref HEAD) $PWD $ATLAS_HOME" >> "$ATLAS_INPUT_LOG"; echo "$ATLAS_TASK_ID" >> ran-here.txt',
].join('\n') + '\n';

function git(args: string[], cwd?: string): string {
  return execFileSync('git', ['-c', 'user.name=atlas test', '-c', 'user.email=test@atlas.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('a --repo URL workspace runs on a daemon that did not make it: it clones the repository under its own home', { skip: db.skip, timeout: 120_000 }, async () => {
  // No daemon lists the workspace under workspaces:: only --repo makes it runnable anywhere.
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces: [] }, 2, '');
  try {
    const [a, b] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0]];
    for (const h of c.homes) h.writeTemplate('look', TEMPLATE);
    // A bare repository with one commit, reached through a file:// URL.
    const bare = path.join(a.root, 'origin.git');
    git(['init', '--quiet', '--bare', bare]);
    const seed = a.dir('seed');
    git(['clone', '--quiet', bare, seed]);
    fs.writeFileSync(path.join(seed, 'hello.txt'), 'hello-from-the-repo\n');
    git(['add', 'hello.txt'], seed);
    git(['commit', '--quiet', '-m', 'seed'], seed);
    git(['push', '--quiet', 'origin', 'HEAD:main'], seed);
    const url = `file://${bare}`;

    await Promise.all(c.homes.map((h) => h.startDaemon()));
    await a.ok(['workspace', 'create', 'api', '--repo', url]);
    const made = await a.json<{ path: string; repo: string; branch: string }>(['workspace', 'show', 'api']);
    assert.equal(made.repo, url, 'the URL is recorded as given');
    assert.equal(fs.readFileSync(path.join(made.path, 'hello.txt'), 'utf8'), 'hello-from-the-repo\n', "the maker's clone has the files");
    await a.stopDaemon();

    const log = path.join(a.root, 'look.log');
    const id = (await b.json<TaskRecord>(['start', 'look', '-w', 'api', '-i', `log=${log}`])).id;
    const done = await b.waitSettled(id, 60_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    const copy = path.join(b.home, 'worktrees', 'api');
    assert.equal(done.workdir, copy, "the task ran in b's own copy");
    const [line] = fs.readFileSync(log, 'utf8').trim().split('\n');
    assert.deepEqual(line?.split(' '), [id, 'hello-from-the-repo', 'atlas/api', fs.realpathSync(copy), b.home], 'the step saw the repository, on the branch, in b');

    // The copy is kept: the next task of the workspace on b finds the work of the first.
    const next = (await b.json<TaskRecord>(['start', 'look', '-w', 'api', '-i', `log=${log}`])).id;
    assert.equal((await b.waitSettled(next, 60_000)).status, 'completed');
    assert.deepEqual(fs.readFileSync(path.join(copy, 'ran-here.txt'), 'utf8').trim().split('\n'), [id, next]);
    assert.equal(fs.existsSync(path.join(made.path, 'ran-here.txt')), false, "the maker's copy is its own: copies share only what is pushed");
  } finally {
    await c.dispose();
  }
});
