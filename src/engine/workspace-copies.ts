// A --repo workspace's working copy on each daemon (DESIGN §9).
//
// A --repo workspace names a repository (a local path or a clonable URL) and a branch. The
// daemon that makes it gets a working copy at once: a git worktree of a local repository (as
// always), or a clone of a URL. On a shared store any daemon may run its tasks: a daemon that
// claims one and has no copy under its own home ($ATLAS_HOME/worktrees/<ws>) clones the
// repository there first and checks out the branch (the repository's own branch when it has
// one, else a new branch from its default head), then runs the task in its copy. A copy is made
// once per daemon and kept: later tasks of the workspace on that daemon find the work of earlier
// ones, as on the daemon that made it. Copies on different daemons share only what is pushed.
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import { promisify } from 'node:util';
import { AtlasError } from '../errors.js';
import { ensureDir } from '../store/atomic.js';
import type { HomePaths } from '../store/paths.js';
import type { WorkspaceRecord } from '../store/records.js';

const run = promisify(execFile);
const GIT_TIMEOUT_MS = 10 * 60_000;

/** The last line git wrote about a failure. */
export function gitMessage(err: unknown): string {
  return ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').filter(Boolean).at(-1) ?? 'git failed';
}

/** Checks that a URL can be cloned from here (it answers `git ls-remote`). */
export async function checkRemote(url: string): Promise<void> {
  try {
    await run('git', ['ls-remote', '--heads', url], { timeout: 60_000, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
  } catch (err) {
    throw new AtlasError('invalid_input', `${url} cannot be cloned from here: ${gitMessage(err)}`, { details: { repo: url } });
  }
}

/** Clones `repo` into `dir` and checks out `branch`: the repository's branch of that name when it has one, else a new one from its head. */
export async function cloneCopy(repo: string, branch: string, dir: string): Promise<void> {
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
  const partial = `${dir}.partial-${process.pid}`;
  await fsp.rm(partial, { recursive: true, force: true });
  try {
    await run('git', ['clone', '--quiet', '--', repo, partial], { timeout: GIT_TIMEOUT_MS, env });
    let remote = false;
    try {
      await run('git', ['-C', partial, 'rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}`], { env });
      remote = true;
    } catch {
      // no such branch in the repository: a new one
    }
    await run('git', ['-C', partial, 'checkout', '--quiet', '-B', branch, ...(remote ? [`origin/${branch}`] : [])], { env });
    // In place only once whole: a daemon killed mid-clone leaves a .partial directory, never a half copy.
    await fsp.rename(partial, dir);
  } catch (err) {
    await fsp.rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw new AtlasError('storage', `could not clone ${repo} (branch ${branch}) into ${dir}: ${gitMessage(err)}`, { retryable: true, details: { repo, dir }, cause: err });
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

const making = new Map<string, Promise<string>>();

/** The directory where this daemon runs tasks of --repo workspace `ws`, cloned first if it has none. */
export function localCopy(paths: HomePaths, ws: WorkspaceRecord): Promise<string> {
  const dir = paths.worktree(ws.name);
  const key = `${paths.root}\0${ws.name}`;
  let p = making.get(key);
  if (!p) {
    p = (async () => {
      if (await exists(dir)) return dir;
      if (!ws.repo || !ws.branch) throw new AtlasError('invalid_input', `workspace ${ws.name} names no repository to clone`);
      await ensureDir(paths.worktreesDir);
      await cloneCopy(ws.repo, ws.branch, dir);
      return dir;
    })().finally(() => making.delete(key));
    making.set(key, p);
  }
  return p;
}
