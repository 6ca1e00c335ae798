// Shared helpers for the engine, step and template tests: a temp home with an in-process
// engine and a workspace directory, templates written into the home, bounded waits, git
// repositories, and a check that no step process outlives its test.
//
// Every wait here has a deadline; nothing sleeps to "let things settle". closeEnv fails the
// test when a process started by a step (recognised by ATLAS_HOME=<home> in its
// environment) is still alive after the engine shut down.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DEFAULT_CONFIG, type Config } from '../../src/config/config.js';
import { Engine } from '../../src/engine/engine.js';
import type { TaskRecord } from '../../src/store/records.js';
import type { LogRecord } from '../../src/store/task-log.js';
import { homeProcesses, procState, waitFor } from '../helpers/daemon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Compiled fixtures: dist/test/fixtures/NAME.js. */
export const FIXTURES_DIR = path.resolve(here, '../fixtures');

export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The fake agent command line (for `ai_command`). */
export const FAKE_AGENT = `${shq(process.execPath)} ${shq(path.join(FIXTURES_DIR, 'fake-agent.js'))}`;

/** Settings for tests: fast kills, fast default backoff. */
export const TEST_CONFIG: Config = {
  ...DEFAULT_CONFIG,
  kill_grace_ms: 200,
  retries: { max: 0, backoff_ms: 50, max_backoff_ms: 1000 },
};

export interface TestEnv {
  /** The mkdtemp directory holding home/ and ws/ side by side (the home is never inside the workspace). */
  root: string;
  home: string;
  /** The workspace's directory. */
  ws: string;
  wsName: string;
  engine: Engine;
  config: Config;
}

export interface EnvOptions {
  config?: Partial<Config>;
  /** Workspace name (default 'ws'); null for none. */
  workspace?: string | null;
  /** Start the engine (default true). */
  start?: boolean;
  /** Run `git init` in the workspace. */
  git?: boolean;
}

export function tempRoot(prefix = 'atlas-engine-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function openEnv(opts: EnvOptions = {}): Promise<TestEnv> {
  const root = tempRoot();
  const home = path.join(root, 'home');
  const ws = path.join(root, 'ws');
  fs.mkdirSync(ws);
  if (opts.git) initRepo(ws);
  const config: Config = { ...TEST_CONFIG, ...opts.config };
  const engine = await Engine.open({ home, config });
  const wsName = opts.workspace === undefined ? 'ws' : (opts.workspace ?? '');
  if (opts.workspace !== null) await engine.store.workspaces.create({ name: wsName, path: ws, kind: 'path', repo: null, branch: null });
  if (opts.start !== false) await engine.start();
  return { root, home, ws, wsName, engine, config };
}

/** Shuts the engine down, checks that no step process is left, removes the temp dir. */
export async function closeEnv(env: TestEnv, engines: Engine[] = []): Promise<void> {
  for (const e of [env.engine, ...engines]) await e.shutdown(2000);
  const strays = await waitForNoStrays(env.home);
  fs.rmSync(env.root, { recursive: true, force: true });
  if (strays.length) throw new Error(`processes left behind by the test (killed now): ${strays.join(', ')}`);
}

/** Runs `fn` in a fresh environment and always closes it; a stray process fails the test. */
export async function withEnv<T>(opts: EnvOptions, fn: (env: TestEnv) => Promise<T>): Promise<T> {
  const env = await openEnv(opts);
  let result: T;
  try {
    result = await fn(env);
  } catch (err) {
    await closeEnv(env).catch(() => undefined);
    throw err;
  }
  await closeEnv(env);
  return result;
}

/** Writes a template (an object, serialised as YAML) into <home>/templates/<name>.yaml. */
export function writeTemplate(env: Pick<TestEnv, 'home'>, template: { name: string; [k: string]: unknown }): string {
  return writeTemplateText(env, template.name, stringify(template));
}

export function writeTemplateText(env: Pick<TestEnv, 'home'>, name: string, text: string): string {
  const dir = path.join(env.home, 'templates');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

/** Waits (bounded) until the task no longer moves by itself. */
export async function settle(engine: Engine, id: string, timeoutMs = 30_000): Promise<TaskRecord> {
  try {
    return await engine.waitForSettled(id, AbortSignal.timeout(timeoutMs));
  } catch (err) {
    const t = await engine.getTask(id).catch(() => undefined);
    throw new Error(`task ${id} did not settle within ${timeoutMs} ms (status ${t?.status ?? '?'}, step ${t?.current_step ?? '?'}): ${(err as Error).message}`);
  }
}

/** Starts a task and waits for it to settle. */
export async function run(env: TestEnv, template: string, inputs: Record<string, string> = {}, timeoutMs = 30_000): Promise<TaskRecord> {
  const t = await env.engine.startTask({ template, workspace: env.wsName, inputs });
  return settle(env.engine, t.id, timeoutMs);
}

export { waitFor };

/** task.json exactly as other programs read it. */
export function readTaskFile(env: Pick<TestEnv, 'home'>, workspace: string, id: string): TaskRecord {
  return JSON.parse(fs.readFileSync(path.join(env.home, 'workspaces', workspace, 'tasks', id, 'task.json'), 'utf8')) as TaskRecord;
}

export function taskDir(env: Pick<TestEnv, 'home'>, workspace: string, id: string): string {
  return path.join(env.home, 'workspaces', workspace, 'tasks', id);
}

export async function logOf(env: TestEnv, task: Pick<TaskRecord, 'id' | 'workspace'>): Promise<LogRecord[]> {
  const r = await env.engine.store.readLog(task.workspace, task.id);
  return r.records;
}

export function readArtifact(env: Pick<TestEnv, 'home'>, task: Pick<TaskRecord, 'id' | 'workspace'>, name: string): string {
  return fs.readFileSync(path.join(taskDir(env, task.workspace, task.id), 'artifacts', name), 'utf8');
}

// ---- processes -------------------------------------------------------------------------

/** True once `pid` is gone: process.kill(pid, 0) throws ESRCH. */
export function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Waits (bounded) until `pid` no longer exists. A killed orphan is reaped by init, which
 * can take a moment, so this polls for ESRCH instead of checking once.
 */
export async function assertDead(pid: number, what = `process ${pid}`, timeoutMs = 10_000): Promise<void> {
  await waitFor(`${what} to be gone (ESRCH); it is in state ${procState(pid) ?? '?'}`, () => isDead(pid), timeoutMs, 25);
}

export function readPid(file: string): number {
  const pid = Number(fs.readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no pid in ${file}`);
  return pid;
}

/** Live (non-zombie) processes whose environment holds ATLAS_HOME=<home>: step processes of that home. */
export const stepProcesses = homeProcesses;


async function waitForNoStrays(home: string): Promise<number[]> {
  try {
    await waitFor('step processes to end', () => stepProcesses(home).length === 0, 5_000, 25);
    return [];
  } catch {
    const strays = stepProcesses(home);
    for (const pid of strays) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return strays;
  }
}

// ---- git -------------------------------------------------------------------------------

export function git(dir: string, ...args: string[]): string {
  const r = spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed in ${dir}: ${r.stderr}`);
  return r.stdout.trim();
}

/** `git init` with a committer identity and no signing, on branch main. */
export function initRepo(dir: string, bare = false): void {
  fs.mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '--initial-branch=main', ...(bare ? ['--bare'] : []));
  if (bare) return;
  git(dir, 'config', 'user.name', 'Atlas Test');
  git(dir, 'config', 'user.email', 'atlas-test@example.invalid');
  git(dir, 'config', 'commit.gpgsign', 'false');
}

/** The statuses of the task's results, as `name#attempt:status`. */
export function resultSummary(t: TaskRecord): string[] {
  return t.step_results.map((r) => `${r.step_name}#${r.attempt}:${r.status}`);
}
