// The test harness: a temp home driven only through the built CLI (process.execPath +
// dist/src/cli/main.js) and the control socket, bounded waits, and the process table. The
// other test helpers build on it (test/engine/helpers.ts for an in-process engine,
// test/store/helpers.ts for a bare store, test/recovery/harness.ts for the crash suite,
// test/cluster/helpers.ts for several daemons on one database) instead of copying it.
//
// A TestHome starts a real daemon with `atlas daemon start`, runs CLI commands capturing
// stdout, stderr and the exit code, and in dispose() stops the daemon with `atlas daemon
// stop`, checks that its pid is gone, and kills -9 anything of the home still alive (the
// daemon or a step process, recognised by ATLAS_HOME=<home> in its environment) so that no
// test leaves a process behind; a leftover fails the test. Every wait has a deadline;
// nothing sleeps to "let things settle".
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AtlasClient } from '../../src/client/client.js';
import { socketPathFor } from '../../src/protocol/socket-path.js';
import { procStat } from '../../src/util/proc.js';
import { VERSION } from '../../src/version.js';
import type { TaskRecord, TaskSummary } from '../../src/store/records.js';
import { TEMPLATES, type TemplateName } from './templates.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled tree (dist/). */
export const DIST = path.resolve(here, '../..');
/** The built CLI. */
export const CLI_PATH = path.join(DIST, 'src', 'cli', 'main.js');

// ---- bounded waits and processes ---------------------------------------------------------

/** Polls `check` until it returns something other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** The process's state letter (Z for a zombie), or undefined once it is gone. */
export function procState(pid: number): string | undefined {
  return procStat(pid)?.state;
}

/** True once `pid` has exited: gone (ESRCH), or a zombie waiting for its parent to reap it. */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  return procState(pid) === 'Z';
}

/** True while any live (non-zombie) process of the group exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // kill(-pgid, 0) also succeeds for a group of zombies: look for a live member.
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(name);
    if (s && s.pgrp === pgid && s.state !== 'Z' && s.state !== 'X') return true;
  }
  return false;
}

export async function assertGone(pid: number, what: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(`${what} (pid ${pid}) to exit; it is in state ${procState(pid) ?? '?'}`, () => isGone(pid), timeoutMs);
}

/** Live (non-zombie) processes with ATLAS_HOME=<home> in their environment: the daemon and its step processes. */
export function homeProcesses(home: string): number[] {
  const marker = Buffer.from(`ATLAS_HOME=${path.resolve(home)}\0`);
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`);
      if (environ.includes(marker) && procState(pid) !== 'Z') out.push(pid);
    } catch {
      // gone, or not readable
    }
  }
  return out;
}

function kill9(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// ---- running the CLI ---------------------------------------------------------------------

export interface CliResult {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  timeoutMs?: number;
  cwd?: string;
  /** Variables added to (or, as undefined, removed from) the CLI's environment. */
  env?: Record<string, string | undefined>;
  /** Run as another user (needs root). */
  uid?: number;
  gid?: number;
  /** Another build of the CLI to run (see portableCli). */
  cliPath?: string;
}

/**
 * The CLI bundled into one file in a world-readable temp directory, for running it as another
 * user: the checkout itself may sit under a directory only its owner can enter (a clone in
 * root's home, any `mktemp -d`), so a test must not depend on where it lives.
 */
export async function portableCli(): Promise<{ path: string; dispose(): void }> {
  const { build } = await import('esbuild');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-cli-'));
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'atlas', version: VERSION, type: 'module' }));
  const out = path.join(dir, 'atlas.mjs');
  await build({
    entryPoints: [CLI_PATH],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    banner: { js: "import { createRequire as __atlasCreateRequire } from 'node:module'; const require = __atlasCreateRequire(import.meta.url);" },
  });
  fs.chmodSync(out, 0o644);
  return { path: out, dispose: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Every CLI child still running, so a failed test can kill it. */
const liveChildren = new Set<ChildProcess>();

/** The environment for CLI children: no inherited ATLAS_HOME (tests always pass --home), no colour. */
export function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env['ATLAS_HOME'];
  return env;
}

function withExtraEnv(env: NodeJS.ProcessEnv, extra: Record<string, string | undefined> | undefined): NodeJS.ProcessEnv {
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function explain(r: CliResult): string {
  return `atlas ${r.args.join(' ')} -> exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

/** Spawns `node dist/src/cli/main.js --home <home> ...args`; the promise settles when it exits (killed after timeoutMs). */
export interface SpawnedCli {
  child: ChildProcess;
  result: Promise<CliResult>;
  /** What it has printed so far. */
  peek(): { stdout: string; stderr: string };
}

export function spawnCli(home: string, args: string[], options: CliOptions = {}): SpawnedCli {
  const full = ['--home', home, ...args];
  const child = spawn(process.execPath, [options.cliPath ?? CLI_PATH, ...full], {
    cwd: options.cwd ?? os.tmpdir(),
    env: withExtraEnv(cliEnv(), options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
  });
  liveChildren.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timeoutMs = options.timeoutMs ?? 60_000;
  const result = new Promise<CliResult>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      const r: CliResult = { args, code, signal, stdout, stderr };
      if (timedOut) reject(new Error(`CLI did not exit within ${timeoutMs} ms (killed)\n${explain(r)}`));
      else resolve(r);
    });
  });
  return { child, result, peek: () => ({ stdout, stderr }) };
}

export function runCli(home: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(home, args, options).result;
}

export function expectExit(r: CliResult, code: number): CliResult {
  assert.equal(r.code, code, `expected exit ${code}\n${explain(r)}`);
  return r;
}

/** Parses stdout as one JSON value: --json must print nothing else on stdout. */
export function parseStdout<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    assert.fail(`stdout is not JSON (${(err as Error).message})\n${explain(r)}`);
  }
}

// ---- a home with a daemon ----------------------------------------------------------------

export interface HomeOptions {
  /** Templates (from TEMPLATES) written into <home>/templates/. */
  templates?: TemplateName[];
  /** Make the home this path under the temp root instead of `home` (for long paths). */
  homeRelative?: string;
}

export class TestHome {
  readonly root: string;
  readonly home: string;
  private readonly clients = new Set<AtlasClient>();

  constructor(options: HomeOptions = {}) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-it-'));
    this.home = path.join(this.root, options.homeRelative ?? 'home');
    for (const t of options.templates ?? []) this.writeTemplate(t, TEMPLATES[t]);
  }

  writeTemplate(name: string, text: string): string {
    const dir = path.join(this.home, 'templates');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  }

  /** A fresh directory under the temp root (outside the home), for a workspace. */
  dir(name: string): string {
    const d = path.join(this.root, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  }

  get socketPath(): string {
    return socketPathFor(this.home);
  }

  cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return runCli(this.home, args, options);
  }

  spawn(args: string[], options: CliOptions = {}): SpawnedCli {
    return spawnCli(this.home, args, options);
  }

  /** Runs a command and expects exit 0. */
  async ok(args: string[], options: CliOptions = {}): Promise<CliResult> {
    return expectExit(await this.cli(args, options), 0);
  }

  /** Runs a command with --json, expects exit 0 and stdout that is exactly one JSON value. */
  async json<T>(args: string[], options: CliOptions = {}): Promise<T> {
    return parseStdout<T>(await this.ok([...args, '--json'], options));
  }

  /** `atlas daemon start`; returns the daemon's pid. */
  async startDaemon(options: CliOptions = {}): Promise<number> {
    const r = await this.json<{ pid: number; already_running: boolean }>(['daemon', 'start'], options);
    assert.ok(Number.isInteger(r.pid) && r.pid > 1, `daemon start --json gave no pid: ${JSON.stringify(r)}`);
    return r.pid;
  }

  /** `atlas daemon stop`: expects exit 0, then that the daemon's pid and every step process of the home are gone; returns the pid. */
  async stopDaemon(extra: string[] = [], options: { othersMayStart?: boolean } = {}): Promise<number> {
    this.closeClients();
    const r = await this.json<{ stopped: boolean; pid?: number }>(['daemon', 'stop', ...extra]);
    assert.equal(r.stopped, true, `daemon stop said it stopped nothing: ${JSON.stringify(r)}`);
    await assertGone(r.pid!, 'the stopped daemon');
    // A follower (logs -f) may start a new daemon at once: then only the stopped pid is checked.
    if (options.othersMayStart) return r.pid!;
    try {
      await waitFor('no process of the home to be left after daemon stop', () => homeProcesses(this.home).length === 0, 10_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; still alive: ${homeProcesses(this.home).join(', ')}`);
    }
    return r.pid!;
  }

  /** A socket client, closed by stopDaemon/dispose. */
  async client(): Promise<AtlasClient> {
    const c = await AtlasClient.connect(this.home, { timeoutMs: 5000 });
    this.clients.add(c);
    void c.closed.then(() => this.clients.delete(c));
    return c;
  }

  private closeClients(): void {
    for (const c of this.clients) c.close();
    this.clients.clear();
  }

  /** Creates workspaces over the socket (setup, where the CLI is not what is tested); returns their directories. */
  async createWorkspaces(names: string[], dirOf: (name: string) => string = (n) => n): Promise<Record<string, string>> {
    const c = await this.client();
    try {
      const dirs: Record<string, string> = {};
      for (const name of names) {
        dirs[name] = this.dir(dirOf(name));
        await c.call('workspace.create', { name, path: dirs[name] });
      }
      return dirs;
    } finally {
      c.close();
    }
  }

  async getTask(id: string): Promise<TaskRecord> {
    const c = await this.client();
    try {
      return (await c.call('task.get', { id })) as TaskRecord;
    } finally {
      c.close();
    }
  }

  async listTasks(): Promise<TaskSummary[]> {
    const c = await this.client();
    try {
      return (await c.call('task.list', {})) as TaskSummary[];
    } finally {
      c.close();
    }
  }

  /** Waits (bounded) until the task no longer moves by itself, through the daemon's task.wait. */
  async waitSettled(id: string, timeoutMs = 30_000): Promise<TaskRecord> {
    const c = await this.client();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        c.call('task.wait', { id }) as Promise<TaskRecord>,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`task ${id} did not settle within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      c.close();
    }
  }

  /** Polls task.get until `pred` holds (bounded). */
  async waitTask(id: string, what: string, pred: (t: TaskRecord) => boolean, timeoutMs = 30_000): Promise<TaskRecord> {
    let last: TaskRecord | undefined;
    try {
      return await waitFor(`task ${id}: ${what}`, async () => {
        last = await this.getTask(id);
        return pred(last) ? last : undefined;
      }, timeoutMs, 30);
    } catch (err) {
      throw new Error(`${(err as Error).message}; last status ${last?.status}, step ${last?.current_step}`);
    }
  }

  /** Waits until the task is running a step whose process has been recorded. */
  async waitStepProcess(id: string, timeoutMs = 30_000): Promise<TaskRecord> {
    return this.waitTask(id, 'a step process is recorded', (t) => t.status === 'running' && t.steps[t.current_step]?.process != null, timeoutMs);
  }

  taskDir(workspace: string, id: string): string {
    return path.join(this.home, 'workspaces', workspace, 'tasks', id);
  }

  /** task.json exactly as other programs read it. */
  readTaskFile(workspace: string, id: string): TaskRecord {
    return JSON.parse(fs.readFileSync(path.join(this.taskDir(workspace, id), 'task.json'), 'utf8')) as TaskRecord;
  }

  /**
   * Stops the daemon if one answers, kills -9 whatever of the home is still alive, removes
   * the temp dir. Throws (after cleaning up) when a process had to be killed.
   */
  async dispose(): Promise<void> {
    this.closeClients();
    const problems: string[] = [];
    // First any CLI process of this home still running (a follower would start a new daemon).
    for (const child of liveChildren) {
      if (child.spawnargs.includes(this.home)) {
        child.kill('SIGKILL');
        problems.push(`a CLI process was still running: ${child.spawnargs.slice(2).join(' ')}`);
      }
    }
    if (await socketAnswers(this.socketPath)) {
      try {
        const r = await this.cli(['daemon', 'stop', '--timeout', '2s'], { timeoutMs: 25_000 });
        if (r.code !== 0) problems.push(`daemon stop failed in dispose:\n${explain(r)}`);
      } catch (err) {
        problems.push(`daemon stop failed in dispose: ${(err as Error).message}`);
      }
    }
    try {
      await waitFor('the home to have no live process', () => homeProcesses(this.home).length === 0, 10_000);
    } catch {
      const left = homeProcesses(this.home);
      for (const pid of left) kill9(pid);
      problems.push(`processes left behind (killed with SIGKILL): ${left.join(', ')}`);
    }
    // A daemon killed with -9 leaves its socket; a fallback socket lives outside the root.
    if (!this.socketPath.startsWith(this.root + path.sep)) fs.rmSync(this.socketPath, { force: true });
    fs.rmSync(this.root, { recursive: true, force: true });
    if (problems.length) throw new Error(problems.join('\n'));
  }
}

/** True when something accepts a connection on the socket. */
export function socketAnswers(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}
