// atlas workspace create | list | show | remove (DESIGN §7): --path and --repo (a git worktree
// under <home>/worktrees/<ws> on a new branch), the --json shapes, bad names (exit 2),
// unknown workspaces (exit 4), and remove refused while a task runs (exit 5); one directory
// is one workspace; --repo with --path refused; names with a leading dash or 300 characters.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord, WorkspaceRecord } from '../../src/store/records.js';
import { TestHome, assertGone, expectExit, parseStdout } from '../helpers/daemon.js';

function git(dir: string, ...args: string[]): string {
  const r = spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A repository on branch main with one commit (README: hello). */
function seedRepo(repo: string): string {
  git(repo, 'init', '-q', '--initial-branch=main');
  git(repo, 'config', 'user.name', 'Atlas Test');
  git(repo, 'config', 'user.email', 'atlas-test@example.invalid');
  git(repo, 'config', 'commit.gpgsign', 'false');
  fs.writeFileSync(path.join(repo, 'README'), 'hello\n');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'first');
  return repo;
}

describe('atlas workspace', () => {
  let h: TestHome;
  let plain: string;

  before(async () => {
    h = new TestHome({ templates: ['sleeper'] });
    plain = h.dir('plain');
    await h.startDaemon();
  });
  after(async () => {
    await h.dispose();
  });

  test('create --path: --json prints the record, workspace.json holds it', async () => {
    const ws = await h.json<WorkspaceRecord>(['workspace', 'create', 'plain', '--path', plain]);
    assert.equal(ws.name, 'plain');
    assert.equal(ws.kind, 'path');
    assert.equal(ws.path, fs.realpathSync(plain));
    assert.equal(ws.repo, null);
    assert.equal(ws.branch, null);
    assert.match(ws.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const file = path.join(h.home, 'workspaces', 'plain', 'workspace.json');
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), ws);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);

    const text = expectExit(await h.cli(['workspace', 'create', 'plain2', '--path', h.dir('plain2')]), 0);
    assert.match(text.stdout, /created workspace plain2 at /);
  });

  test('one directory is one workspace: a second name for it is refused, naming the first', async () => {
    // Through a symlink too: the real path is what counts.
    const link = path.join(h.root, 'plain-link');
    fs.symlinkSync(plain, link);
    for (const dir of [plain, link]) {
      const r = expectExit(await h.cli(['workspace', 'create', 'twin', '--path', dir]), 2);
      assert.match(r.stderr, /is already workspace plain; run tasks there with -w plain/);
    }
    expectExit(await h.cli(['workspace', 'show', 'twin']), 4);
  });

  test('--repo with --path is refused, not --path ignored in silence', async () => {
    const r = expectExit(await h.cli(['workspace', 'create', 'both', '--path', h.dir('both'), '--repo', plain]), 2);
    assert.match(r.stderr, /either --path or --repo, not both/);
    expectExit(await h.cli(['workspace', 'show', 'both']), 4);
  });

  test('names: a leading dash is refused with the name rule (never help and exit 0); so is a 300-character name', async () => {
    for (const bad of ['-foo', '-help', '-hello']) {
      const r = expectExit(await h.cli(['workspace', 'create', bad, '--path', plain]), 2);
      assert.match(r.stderr, new RegExp(`${bad}: names cannot start with '-'`));
      assert.equal(r.stdout, '', 'printed help');
    }
    const long = 'a'.repeat(300);
    for (const args of [['workspace', 'create', long, '--path', plain], ['workspace', 'show', long]]) {
      const r = expectExit(await h.cli(args), 2);
      assert.match(r.stderr, /1-64 characters of a-z, 0-9/);
      assert.doesNotMatch(r.stderr, /<=200/);
    }
    // 65 to 200 characters: the daemon's own check, with the name cut short in the message.
    const r = expectExit(await h.cli(['workspace', 'create', 'b'.repeat(150), '--path', plain]), 2);
    assert.match(r.stderr, /invalid workspace name "b{40}"\.\.\. \(150 characters\): use 1-64 characters/);
  });

  test('list -w of a workspace that does not exist says so (exit 4)', async () => {
    const r = expectExit(await h.cli(['list', '-w', 'nosuch']), 4);
    assert.match(r.stderr, /no workspace nosuch/);
    expectExit(await h.cli(['list', '-w', 'plain2']), 0);
  });

  test('create refuses a bad name (exit 2) before touching any file', async () => {
    for (const bad of ['Bad/Name', '../escape', '.hidden', 'UPPER']) {
      const r = expectExit(await h.cli(['workspace', 'create', bad, '--path', plain]), 2);
      assert.match(r.stderr, /invalid workspace name/);
      assert.equal(r.stdout, '');
    }
    assert.deepEqual(fs.readdirSync(path.join(h.home, 'workspaces')).sort(), ['plain', 'plain2']);
    assert.equal(fs.existsSync(path.join(h.root, 'escape')), false);
  });

  test('create refuses a missing directory and a duplicate name (exit 2)', async () => {
    expectExit(await h.cli(['workspace', 'create', 'nodir', '--path', path.join(h.root, 'does-not-exist')]), 2);
    const dup = expectExit(await h.cli(['workspace', 'create', 'plain', '--path', plain]), 2);
    assert.match(dup.stderr, /already exists/);
    expectExit(await h.cli(['workspace', 'create']), 2);
  });

  test('create --repo makes a worktree under <home>/worktrees/<ws> on a new branch', async () => {
    const repo = seedRepo(h.dir('repo'));

    const ws = await h.json<WorkspaceRecord>(['workspace', 'create', 'feature-x', '--repo', repo]);
    assert.equal(ws.kind, 'worktree');
    assert.equal(ws.path, path.join(h.home, 'worktrees', 'feature-x'));
    assert.equal(ws.repo, repo);
    assert.equal(ws.branch, 'atlas/feature-x');
    assert.equal(fs.readFileSync(path.join(ws.path, 'README'), 'utf8'), 'hello\n');
    assert.equal(git(ws.path, 'rev-parse', '--abbrev-ref', 'HEAD'), 'atlas/feature-x');
    assert.match(git(repo, 'rev-parse', '--verify', 'refs/heads/atlas/feature-x'), /^[0-9a-f]{40}$/);
    assert.match(git(repo, 'worktree', 'list'), /worktrees\/feature-x/);
    // The repository's own checkout is untouched.
    assert.equal(git(repo, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');

    const named = await h.json<WorkspaceRecord>(['workspace', 'create', 'fix-42', '--repo', repo, '--branch', 'fix/42']);
    assert.equal(named.branch, 'fix/42');
    assert.equal(git(named.path, 'rev-parse', '--abbrev-ref', 'HEAD'), 'fix/42');

    // Not a repository, or an existing branch: refused with exit 2.
    expectExit(await h.cli(['workspace', 'create', 'norepo', '--repo', plain]), 2);
    expectExit(await h.cli(['workspace', 'create', 'again', '--repo', repo, '--branch', 'fix/42']), 2);
  });

  test('list --json is an array of the records', async () => {
    const list = await h.json<WorkspaceRecord[]>(['workspace', 'list']);
    assert.deepEqual(list.map((w) => w.name).sort(), ['feature-x', 'fix-42', 'plain', 'plain2']);
    for (const w of list) assert.deepEqual(Object.keys(w).sort(), ['branch', 'created_at', 'kind', 'name', 'path', 'repo', 'schema_version']);
    const text = expectExit(await h.cli(['workspace', 'list']), 0);
    assert.match(text.stdout, /feature-x\s+worktree/);
  });

  test('show --json: the record with task counts; unknown name exits 4', async () => {
    const ws = await h.json<WorkspaceRecord & { tasks_total: number; tasks_open: number; recent_tasks: unknown[] }>(['workspace', 'show', 'feature-x']);
    assert.equal(ws.name, 'feature-x');
    assert.equal(ws.branch, 'atlas/feature-x');
    assert.equal(ws.tasks_total, 0);
    assert.equal(ws.tasks_open, 0);
    assert.deepEqual(ws.recent_tasks, []);
    const text = expectExit(await h.cli(['workspace', 'show', 'feature-x']), 0);
    assert.match(text.stdout, /branch\s+atlas\/feature-x/);
    const missing = expectExit(await h.cli(['workspace', 'show', 'nope']), 4);
    assert.match(missing.stderr, /nope/);
    expectExit(await h.cli(['workspace', 'show', 'Bad/Name']), 2);
  });

  test('remove is refused (exit 5) while a task runs, and works once it is canceled', async () => {
    const task = await h.json<TaskRecord>(['start', 'sleeper', '-w', 'plain']);
    const running = await h.waitStepProcess(task.id);
    const r = expectExit(await h.cli(['workspace', 'remove', 'plain']), 5);
    assert.match(r.stderr, new RegExp(task.id));
    assert.ok(fs.existsSync(path.join(h.home, 'workspaces', 'plain', 'workspace.json')));

    const canceled = await h.json<TaskRecord>(['cancel', task.id]);
    assert.equal(canceled.status, 'abandoned');
    await assertGone(running.steps[0]!.process!.pid, 'the canceled step');

    const removed = await h.json<{ name: string; purged: boolean; warnings: string[] }>(['workspace', 'remove', 'plain']);
    assert.deepEqual(removed, { name: 'plain', purged: false, warnings: [] });
    expectExit(await h.cli(['workspace', 'show', 'plain']), 4);
    // The directory itself is the user's: never deleted.
    assert.ok(fs.existsSync(plain));
    expectExit(await h.cli(['workspace', 'remove', 'plain']), 4);
  });

  test('remove of a worktree workspace removes the worktree', async () => {
    const r = expectExit(await h.cli(['workspace', 'remove', 'feature-x']), 0);
    assert.match(r.stdout, /removed workspace feature-x/);
    assert.equal(fs.existsSync(path.join(h.home, 'worktrees', 'feature-x')), false);
    const list = parseStdout<WorkspaceRecord[]>(expectExit(await h.cli(['workspace', 'list', '--json']), 0));
    assert.deepEqual(list.map((w) => w.name).sort(), ['fix-42', 'plain2']);
    await h.stopDaemon();
  });

  test('each action is its own command: its help shows only its options; a missing name is a usage error', async () => {
    const create = (await h.ok(['workspace', 'create', '--help'])).stdout;
    for (const opt of ['--path', '--repo', '--branch']) assert.ok(create.includes(opt), `create --help lists ${opt}`);
    assert.ok(!create.includes('--purge'), 'create --help does not list remove\'s --purge');
    const remove = (await h.ok(['workspace', 'remove', '--help'])).stdout;
    assert.ok(remove.includes('--purge') && remove.includes('--force'));
    assert.ok(!remove.includes('--repo'), 'remove --help does not list create\'s --repo');
    const list = (await h.ok(['workspace', 'list', '--help'])).stdout;
    assert.ok(!/--(path|repo|branch|purge|force)\b/.test(list), list);
    expectExit(await h.cli(['workspace', 'show']), 2);
    expectExit(await h.cli(['template', 'show']), 2);
    const template = (await h.ok(['template', '--help'])).stdout;
    for (const sub of ['list', 'show <name>', 'validate <file>']) assert.ok(template.includes(`template ${sub}`), template);
  });
});

describe('atlas workspace --repo URL', () => {
  test('create clones the URL under <home>/worktrees/<ws> on a new branch; remove removes the clone unless it has changes', async () => {
    const h = new TestHome();
    try {
      const seed = seedRepo(h.dir('seed'));
      const bare = path.join(h.root, 'origin.git');
      git(h.root, 'clone', '-q', '--bare', seed, bare);
      await h.startDaemon();

      const url = `file://${bare}`;
      const ws = await h.json<WorkspaceRecord>(['workspace', 'create', 'web', '--repo', url]);
      assert.deepEqual([ws.kind, ws.repo, ws.branch, ws.path], ['worktree', url, 'atlas/web', path.join(h.home, 'worktrees', 'web')]);
      assert.equal(fs.readFileSync(path.join(ws.path, 'README'), 'utf8'), 'hello\n');
      assert.equal(git(ws.path, 'rev-parse', '--abbrev-ref', 'HEAD'), 'atlas/web');

      // A URL nothing answers: a clear refusal (exit 2), nothing made.
      const bad = expectExit(await h.cli(['workspace', 'create', 'nothing', '--repo', `file://${path.join(h.root, 'missing.git')}`]), 2);
      assert.match(bad.stderr, /cannot be cloned from here/);
      assert.equal(fs.existsSync(path.join(h.home, 'worktrees', 'nothing')), false);

      fs.writeFileSync(path.join(ws.path, 'README'), 'changed\n');
      const kept = await h.json<{ warnings: string[] }>(['workspace', 'remove', 'web']);
      assert.match(kept.warnings.join('\n'), /kept: it has changes not committed/);
      assert.ok(fs.existsSync(ws.path), 'a clone with changes is kept');
      await h.json(['workspace', 'create', 'site', '--repo', url]);
      await h.json(['workspace', 'remove', 'site']);
      assert.equal(fs.existsSync(path.join(h.home, 'worktrees', 'site')), false, 'a clean clone is removed');
    } finally {
      await h.dispose();
    }
  });
});
