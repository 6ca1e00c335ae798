// Workspace operations: bind a name to an existing directory (--path) or to a new git
// worktree on a new branch under $ATLAS_HOME/worktrees/<ws> (--repo DIR) or a clone there (--repo URL:
// workspace-copies.ts), list, show, remove.
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { AtlasError, isAtlasError } from '../errors.js';
import { ensureDir } from '../store/atomic.js';
import { assertName } from '../store/names.js';
import { TERMINAL_STATUSES, type WorkspaceRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { isRepoUrl } from '../util/repo-url.js';
import { checkRemote, cloneCopy, gitMessage } from './workspace-copies.js';

const run = promisify(execFile);

export interface CreateWorkspaceParams {
  name: string;
  path?: string | undefined;
  repo?: string | undefined;
  branch?: string | undefined;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function createWorkspace(store: Store, p: CreateWorkspaceParams): Promise<WorkspaceRecord> {
  const name = assertName('workspace', p.name);
  if (p.path !== undefined && p.repo !== undefined) throw new AtlasError('invalid_input', 'give either --path or --repo, not both');
  if (p.branch !== undefined && p.repo === undefined) throw new AtlasError('invalid_input', '--branch goes with --repo');
  try {
    await store.workspaces.get(name);
    throw new AtlasError('already_exists', `workspace ${name} already exists; 'atlas workspace show ${name}' shows it`, { details: { name } });
  } catch (err) {
    // A corrupt record is replaced (the store sets the broken file aside): declaring the
    // workspace again is how a person fixes it.
    if (!isAtlasError(err, 'not_found') && !isAtlasError(err, 'corrupt')) throw err;
  }
  if (p.repo === undefined) {
    const dir = path.resolve(p.path ?? process.cwd());
    if (!(await isDir(dir))) throw new AtlasError('invalid_input', `${dir} is not an existing directory; create it first or pass another --path`, { details: { path: dir } });
    const real = await fsp.realpath(dir);
    // One directory, one workspace: tasks run one at a time per workspace because they share
    // its files, which a second name for the same directory would defeat.
    const twin = (await store.workspaces.list()).find((w) => w.path === real);
    if (twin) {
      throw new AtlasError('already_exists', `${real} is already workspace ${twin.name}; run tasks there with -w ${twin.name} (two workspaces in one directory would run tasks over the same files at once)`, {
        details: { path: real, workspace: twin.name },
      });
    }
    return store.workspaces.create({ name, path: real, kind: 'path', repo: null, branch: null });
  }
  const branch = p.branch ?? `atlas/${name}`;
  try {
    await run('git', ['check-ref-format', '--branch', branch]);
  } catch {
    throw new AtlasError('invalid_input', `'${branch}' is not a valid branch name`);
  }
  const dir = store.paths.worktree(name);
  if (isRepoUrl(p.repo)) {
    // A URL: this daemon's copy is a clone (as every other daemon's will be).
    if (await isDir(dir)) throw new AtlasError('already_exists', `${dir} already exists (a copy left by an earlier workspace ${name}?); remove it first`, { details: { path: dir } });
    await checkRemote(p.repo);
    await ensureDir(store.paths.worktreesDir);
    try {
      await cloneCopy(p.repo, branch, dir);
    } catch (err) {
      throw new AtlasError('invalid_input', (err as Error).message, { details: { repo: p.repo } });
    }
    return store.workspaces.create({ name, path: dir, kind: 'worktree', repo: p.repo, branch });
  }
  const repo = path.resolve(p.repo);
  try {
    await run('git', ['-C', repo, 'rev-parse', '--git-dir']);
  } catch {
    throw new AtlasError('invalid_input', `${repo} is not a git repository`, { details: { repo } });
  }
  await ensureDir(store.paths.worktreesDir);
  try {
    await run('git', ['-C', repo, 'worktree', 'add', '-b', branch, dir]);
  } catch (err) {
    const msg = gitMessage(err);
    throw new AtlasError('invalid_input', `could not create a worktree of ${repo} on branch ${branch}: ${msg}`);
  }
  return store.workspaces.create({ name, path: dir, kind: 'worktree', repo, branch });
}

/** A --repo workspace runs on any daemon of a shared store (each makes its own copy); a --path one only where its directory is. */
export function runsAnywhere(ws: WorkspaceRecord): boolean {
  return ws.kind === 'worktree' && ws.repo !== null;
}

export interface RemoveResult {
  name: string;
  purged: boolean;
  warnings: string[];
}

/** Removes a workspace. Refused while one of its tasks is not finished; history kept unless `purge`. */
export async function removeWorkspace(store: Store, name: string, purge: boolean): Promise<RemoveResult> {
  const warnings: string[] = [];
  let ws: WorkspaceRecord | undefined;
  try {
    ws = await store.workspaces.get(assertName('workspace', name));
  } catch (err) {
    // A corrupt record can still be removed; what it said (a worktree to remove) is lost.
    if (!isAtlasError(err, 'corrupt')) throw err;
    warnings.push(`the record of workspace ${name} was corrupt (${err.message}); if it was a git worktree, remove that with 'git worktree remove'`);
  }
  const open = (await store.tasks.listTasks({ workspace: name })).filter((t) => !TERMINAL_STATUSES.has(t.status));
  if (open.some((t) => t.status === 'running' || t.status === 'pending')) {
    throw new AtlasError('not_allowed', `workspace ${name} has tasks in progress (${open.map((t) => t.id).join(', ')}); cancel them first`, {
      details: { name, tasks: open.map((t) => t.id) },
    });
  }
  if (ws?.kind === 'worktree' && ws.repo && isRepoUrl(ws.repo)) {
    // This daemon's clone goes (other daemons' copies stay in their homes); one with changes not
    // committed is kept unless --purge.
    const dir = store.paths.worktree(ws.name);
    const dirty = await run('git', ['-C', dir, 'status', '--porcelain']).then((r) => r.stdout.trim() !== '', () => false);
    if (dirty && !purge) warnings.push(`the clone ${dir} was kept: it has changes not committed (use --purge to remove it anyway)`);
    else await fsp.rm(dir, { recursive: true, force: true });
  } else if (ws?.kind === 'worktree' && ws.repo) {
    try {
      await run('git', ['-C', ws.repo, 'worktree', 'remove', ...(purge ? ['--force'] : []), ws.path]);
    } catch (err) {
      const msg = gitMessage(err);
      warnings.push(`the worktree ${ws.path} was kept: ${msg} (use --purge to force)`);
    }
  }
  await store.workspaces.remove(name, purge);
  return { name, purged: purge, warnings };
}
