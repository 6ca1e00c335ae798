// git: `action: commit` stages everything and commits `message:` (inputs interpolated as
// text, passed on stdin so nothing is shell-parsed), recording files_changed and the commit;
// `push` pushes the current branch (to `remote:`, default origin); `branch` creates or
// switches to `branch:`. A push that fails (the remote's side) leads to gh_failed; a local
// failure (not a repository, git add, git commit, git checkout) is the task's plain `failed`
// with git's own last words in the error ("git commit exited with code 128: Author identity
// unknown"), never reported as a GitHub failure.
import { capture } from './capture.js';
import { outcome, processOutcome, runCommand, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';
import type { StepSpec } from '../templates/schema.js';

type GitSpec = Extract<StepSpec, { type: 'git' }>;

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function failed(error: string, fields: Partial<StepOutcome> = {}): StepOutcome {
  return outcome('failed', { error, fail_status: 'gh_failed', ...fields });
}

/** A local git command that did not succeed: `failed`, its error ending with what git said last. */
function localFailure(ctx: StepContext, o: StepOutcome, fields: Partial<StepOutcome> = {}): StepOutcome {
  const said = ctx
    .outputTail()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('[atlas'))
    .at(-1);
  return { ...o, ...fields, error: said && o.error ? `${o.error}: ${said.slice(0, 300)}` : o.error, fail_status: 'failed' };
}

export const gitExecutor: StepExecutor = {
  async run(ctx: StepContext): Promise<StepOutcome> {
    const spec = ctx.spec as GitSpec;
    const inRepo = await capture(ctx, 'git rev-parse --is-inside-work-tree');
    if (inRepo.result.exitCode !== 0) return outcome('failed', { error: `the workspace ${ctx.cwd} is not a git repository` });
    switch (spec.action) {
      case 'commit':
        return commit(ctx, spec);
      case 'push':
        return push(ctx, spec);
      case 'branch':
        return branch(ctx, spec);
      default: {
        const never: never = spec.action;
        return failed(`unknown git action ${String(never)}`);
      }
    }
  },
};

async function commit(ctx: StepContext, spec: GitSpec): Promise<StepOutcome> {
  const add = await runCommand(ctx, 'git add -A');
  const addOutcome = processOutcome(add, 'git add');
  if (addOutcome.status !== 'completed') return localFailure(ctx, addOutcome);
  const staged = await capture(ctx, 'git diff --cached --name-only -z');
  const files = staged.stdout.split('\0').filter(Boolean);
  if (files.length === 0 && !spec.allow_empty) {
    ctx.output.write('stderr', '[atlas] nothing to commit; the step succeeds without a commit\n');
    return outcome('completed', { exit_code: 0, files_changed: [], commit: null });
  }
  const message = ctx.interpolate(spec.message ?? 'atlas commit', 'text');
  const r = await runCommand(ctx, `git commit -q ${spec.allow_empty ? '--allow-empty ' : ''}-F -`, { stdin: message });
  const o = processOutcome(r, 'git commit');
  if (o.status !== 'completed') return localFailure(ctx, o, { files_changed: files });
  const head = await capture(ctx, 'git rev-parse HEAD');
  return outcome('completed', { exit_code: 0, files_changed: files, commit: head.stdout.trim() || null });
}

async function push(ctx: StepContext, spec: GitSpec): Promise<StepOutcome> {
  const remote = spec.remote ?? 'origin';
  const remotes = await capture(ctx, 'git remote');
  if (!remotes.stdout.split('\n').includes(remote)) {
    if (spec.optional) {
      ctx.output.write('stderr', `[atlas] no remote '${remote}'; push skipped (optional)\n`);
      return outcome('completed', { exit_code: 0 });
    }
    return failed(`no git remote '${remote}' in ${ctx.cwd}`);
  }
  const current = (await capture(ctx, 'git rev-parse --abbrev-ref HEAD')).stdout.trim();
  const target = spec.branch ? ctx.interpolate(spec.branch, 'text') : current;
  const r = await runCommand(ctx, `git push -u ${q(remote)} ${q(`HEAD:refs/heads/${target}`)}`);
  const o = processOutcome(r, 'git push');
  return o.status === 'completed' ? o : { ...o, fail_status: 'gh_failed' };
}

async function branch(ctx: StepContext, spec: GitSpec): Promise<StepOutcome> {
  const name = ctx.interpolate(spec.branch ?? '', 'text');
  const check = await capture(ctx, `git check-ref-format --branch ${q(name)}`);
  if (check.result.exitCode !== 0) return outcome('failed', { error: `'${name}' is not a valid branch name` });
  const r = await runCommand(ctx, `git checkout -q -B ${q(name)}`);
  const o = processOutcome(r, 'git checkout');
  return o.status === 'completed' ? o : localFailure(ctx, o);
}
