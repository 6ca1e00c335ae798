// Helpers for the fault-injection suite, on top of the one test harness (test/helpers/daemon.ts:
// bounded waits, the process table, the CLI's environment): a temp home driven by a real
// daemon process (the compiled CLI), hard kills, and the on-disk and process-table checks the
// tests make after every crash.
//
// Every wait has a deadline. Processes started by a test are tracked and killed by pid in
// `cleanup()`; step processes are found by a per-home marker in their environment
// (ATLAS_TEST_MARK, set on every step by the templates these tests write) and in their
// command line, so nothing else on the machine is ever touched.
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AtlasClient, CLI_MAIN, startDaemon } from '../../src/client/client.js';
import type { TaskRecord } from '../../src/store/records.js';
import { decodeTask } from '../../src/store/task-codec.js';
import { procStat } from '../../src/util/proc.js';
import { cliEnv, isGone, procState, waitFor as waitForCondition } from '../helpers/daemon.js';

export { sleep };

/**
 * The harness's waitFor (test/helpers/daemon.ts), except that a check that throws counts as
 * "not yet" (the daemon may not answer yet); the last error is named on timeout.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, intervalMs = 20): Promise<T> {
  let lastErr: unknown;
  const tolerant = async () => {
    try {
      return await check();
    } catch (err) {
      lastErr = err;
      return undefined;
    }
  };
  try {
    return await waitForCondition(what, tolerant, timeoutMs, intervalMs);
  } catch (err) {
    if (lastErr) (err as Error).message += ` (last error: ${(lastErr as Error).message})`;
    throw err;
  }
}

/** Alive and no zombie (a zombie runs nothing and holds nothing). */
export function pidAlive(pid: number): boolean {
  return !isGone(pid);
}

export interface Sandbox {
  root: string;
  home: string;
  /** A unique string set on every step process (env ATLAS_TEST_MARK) and present in their command lines. */
  marker: string;
  /** workspace name -> its directory */
  workspaces: Record<string, string>;
  /** Daemon pids this sandbox started; cleanup kills any still alive. */
  pids: Set<number>;
}

export interface SandboxOptions {
  /** Workspace names; each gets its own directory beside the home. */
  workspaces?: string[];
  /** config.yaml text. */
  config?: string;
  /** The home's parent directory (default: a new temp dir). */
  root?: string;
}

const DEFAULT_CONFIG_YAML = 'max_concurrent_tasks: 4\nstep_defaults:\n  kill_grace: 300ms\n';

export function makeSandbox(opts: SandboxOptions = {}): Sandbox {
  const root = opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-recovery-'));
  const home = path.join(root, 'home');
  fs.mkdirSync(path.join(home, 'templates'), { recursive: true, mode: 0o700 });
  fs.chmodSync(home, 0o700);
  fs.writeFileSync(path.join(home, 'config.yaml'), opts.config ?? DEFAULT_CONFIG_YAML, { mode: 0o600 });
  const workspaces: Record<string, string> = {};
  for (const ws of opts.workspaces ?? ['w1']) {
    const dir = path.join(root, `ws-${ws}`);
    fs.mkdirSync(dir, { recursive: true });
    workspaces[ws] = dir;
  }
  return { root, home, marker: `atlas-test-mark-${crypto.randomBytes(6).toString('hex')}`, workspaces, pids: new Set() };
}

/** The shell line a step of the crash templates runs: one line `<task>:<step>:<attempt>` appended to lines.txt. */
export function lineCommand(marker: string, sleepSeconds: number): string {
  return `sleep ${sleepSeconds}; echo "$ATLAS_TASK_ID:$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt # ${marker}`;
}

/** Writes a template of `steps` shell steps (s01, s02, ...) that each append their line. */
export function writeLineTemplate(
  sb: Sandbox,
  name: string,
  steps: number,
  opts: { sleepSeconds?: number; onInterrupt?: 'rerun' | 'pause'; longEvery?: number; longSleepSeconds?: number } = {},
): void {
  const lines = [`name: ${name}`, 'steps:'];
  for (let i = 1; i <= steps; i++) {
    const long = opts.longEvery !== undefined && i % opts.longEvery === 0;
    const secs = long ? (opts.longSleepSeconds ?? 1) : (opts.sleepSeconds ?? 0.03);
    lines.push(`  - name: s${String(i).padStart(2, '0')}`, '    type: shell', `    run: ${JSON.stringify(lineCommand(sb.marker, secs))}`);
    lines.push('    env:', `      ATLAS_TEST_MARK: ${sb.marker}`);
    if (opts.onInterrupt) lines.push(`    on_interrupt: ${opts.onInterrupt}`);
  }
  writeTemplateText(sb, name, lines.join('\n') + '\n');
}

export function writeTemplateText(sb: Sandbox, name: string, text: string): void {
  fs.writeFileSync(path.join(sb.home, 'templates', `${name}.yaml`), text, { mode: 0o600 });
}

// ---- the daemon ----------------------------------------------------------------------

/** Starts the daemon the way `atlas daemon start` does and waits for it to answer; returns its pid. */
export async function startTheDaemon(sb: Sandbox, timeoutMs = 20_000): Promise<number> {
  const r = await startDaemon(sb.home, { timeoutMs });
  sb.pids.add(r.pid);
  return r.pid;
}

/** Spawns `atlas daemon run` directly (detached), optionally through `sh -c` with a prefix such as `ulimit -n 128;`. */
export function spawnDaemonRun(sb: Sandbox, opts: { shellPrefix?: string } = {}): ChildProcess {
  const errFile = fs.openSync(path.join(sb.root, 'daemon-stderr.log'), 'a');
  const argv = [CLI_MAIN, 'daemon', 'run', '--home', sb.home, '--quiet'];
  const child = opts.shellPrefix
    ? spawn('/bin/sh', ['-c', `${opts.shellPrefix} exec "$0" "$@"`, process.execPath, ...argv], { detached: true, stdio: ['ignore', 'ignore', errFile] })
    : spawn(process.execPath, argv, { detached: true, stdio: ['ignore', 'ignore', errFile] });
  fs.closeSync(errFile);
  if (child.pid !== undefined) sb.pids.add(child.pid);
  child.on('error', () => undefined);
  child.unref();
  return child;
}

/** Resolves with the daemon's pid once it answers a ping (bounded). */
export async function waitForPing(sb: Sandbox, timeoutMs = 20_000): Promise<number> {
  return waitFor(
    'the daemon to answer a ping',
    async () => {
      const r = (await call(sb, 'daemon.ping', {}, 1000)) as { pid: number };
      return r.pid;
    },
    timeoutMs,
    25,
  );
}

/** One JSON-RPC call on a fresh connection. */
export async function call(sb: Sandbox, method: string, params: unknown = {}, connectTimeoutMs = 5000): Promise<unknown> {
  const c = await AtlasClient.connect(sb.home, { timeoutMs: connectTimeoutMs });
  try {
    return await c.request(method, params);
  } finally {
    c.close();
  }
}

/** The pid recorded in daemon.pid (the pid alone), if any. */
export function recordedDaemonPid(sb: Sandbox): number | undefined {
  try {
    const text = fs.readFileSync(path.join(sb.home, 'daemon.pid'), 'utf8');
    return /^\d+\n$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** kill -9 and wait (bounded) until the process is gone. */
export async function killHard(pid: number, timeoutMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitFor(`pid ${pid} to die after SIGKILL`, () => !pidAlive(pid), timeoutMs, 5);
}

/** Stops the daemon politely (daemon.stop) and waits for its process to go; kill -9 if it will not. */
export async function stopTheDaemon(sb: Sandbox, pid: number | undefined, timeoutMs = 20_000): Promise<void> {
  try {
    await call(sb, 'daemon.stop', { timeout_ms: 2000 }, 1000);
  } catch {
    // not running, or already going
  }
  if (pid === undefined) return;
  try {
    await waitFor(`daemon ${pid} to stop`, () => !pidAlive(pid), timeoutMs, 20);
  } catch (err) {
    await killHard(pid).catch(() => undefined);
    throw err;
  }
}

/** Runs the CLI synchronously (bounded); returns exit status and output. */
export function cli(sb: Sandbox, args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_MAIN, '--home', sb.home, ...args], { encoding: 'utf8', timeout: timeoutMs, env: cliEnv() });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// ---- tasks on disk ---------------------------------------------------------------------

export interface TaskFile {
  workspace: string;
  id: string;
  dir: string;
  /** The decoded task, or undefined with `error` when task.json does not parse. */
  task?: TaskRecord;
  error?: string;
}

/** Every task.json in the home, decoded strictly (JSON.parse plus the shape check atlas itself applies). */
export function readTaskFiles(sb: Sandbox): TaskFile[] {
  const out: TaskFile[] = [];
  const wsRoot = path.join(sb.home, 'workspaces');
  for (const ws of safeReaddir(wsRoot)) {
    const tasksDir = path.join(wsRoot, ws, 'tasks');
    for (const id of safeReaddir(tasksDir)) {
      if (!id.startsWith('task-')) continue;
      const dir = path.join(tasksDir, id);
      const file = path.join(dir, 'task.json');
      try {
        out.push({ workspace: ws, id, dir, task: decodeTask(fs.readFileSync(file, 'utf8'), file) });
      } catch (err) {
        out.push({ workspace: ws, id, dir, error: (err as Error).message });
      }
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function taskDir(sb: Sandbox, ws: string, id: string): string {
  return path.join(sb.home, 'workspaces', ws, 'tasks', id);
}

export function readTask(sb: Sandbox, ws: string, id: string): TaskRecord {
  const file = path.join(taskDir(sb, ws, id), 'task.json');
  return decodeTask(fs.readFileSync(file, 'utf8'), file);
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The lines steps appended, as counts by `<task>:<step>` and attempt. */
export function readLines(sb: Sandbox): Map<string, Map<number, number>> {
  const counts = new Map<string, Map<number, number>>();
  for (const dir of Object.values(sb.workspaces)) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(dir, 'lines.txt'), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      const m = /^(task-[0-9-]+):([a-z0-9._-]+):(\d+)$/.exec(line);
      if (!m) throw new Error(`a malformed line in lines.txt: ${JSON.stringify(line)}`);
      const key = `${m[1]}:${m[2]}`;
      const byAttempt = counts.get(key) ?? new Map<number, number>();
      byAttempt.set(Number(m[3]), (byAttempt.get(Number(m[3])) ?? 0) + 1);
      counts.set(key, byAttempt);
    }
  }
  return counts;
}

// ---- processes -------------------------------------------------------------------------

export interface ProcInfo {
  pid: number;
  ppid: number;
  stat: string;
  args: string;
}

/** Live (non-zombie) processes that belong to this sandbox's steps: the marker in their command line or environment. */
export function markerProcesses(sb: Sandbox): ProcInfo[] {
  const r = spawnSync('ps', ['-eo', 'pid=,ppid=,stat=,args='], { encoding: 'utf8', timeout: 10_000 });
  const table = new Map<number, ProcInfo>();
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    table.set(Number(m[1]), { pid: Number(m[1]), ppid: Number(m[2]), stat: m[3]!, args: m[4]! });
  }
  const needle = Buffer.from(`ATLAS_TEST_MARK=${sb.marker}\0`);
  const out: ProcInfo[] = [];
  for (const p of table.values()) {
    if (p.pid === process.pid || p.stat.startsWith('Z')) continue;
    let marked = p.args.includes(sb.marker);
    if (!marked) {
      try {
        marked = fs.readFileSync(`/proc/${p.pid}/environ`).includes(needle);
      } catch {
        // gone, or not ours to read
      }
    }
    if (marked && procState(p.pid) !== 'Z') out.push(p);
  }
  return out;
}

/** Marker processes that are not descendants of `daemonPid` (orphans of an earlier daemon). */
export function orphanProcesses(sb: Sandbox, daemonPid: number | undefined): ProcInfo[] {
  const procs = markerProcesses(sb);
  if (daemonPid === undefined) return procs;
  return procs.filter((p) => !descendsFrom(p.pid, daemonPid));
}

function descendsFrom(pid: number, ancestor: number): boolean {
  for (let cur = pid, hops = 0; cur > 1 && hops < 64; hops++) {
    if (cur === ancestor) return true;
    const ppid = procStat(cur)?.ppid;
    if (ppid === undefined) return false;
    cur = ppid;
  }
  return false;
}


/** Kills, by pid, every live process of this sandbox: its daemons (checked by their command
 *  line naming this home, so a reused pid is never hit) and its step processes (by marker). */
export function killEverything(sb: Sandbox, extraPids: number[] = []): number[] {
  const daemons = new Set<number>([...sb.pids, ...extraPids]);
  const d = recordedDaemonPid(sb);
  if (d !== undefined) daemons.add(d);
  const pids = new Set<number>();
  for (const pid of daemons) if (cmdline(pid).includes(sb.home)) pids.add(pid);
  for (const p of markerProcesses(sb)) pids.add(p.pid);
  const killed: number[] = [];
  for (const pid of pids) {
    if (pid === process.pid || !pidAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone
    }
  }
  return killed;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** The daemon's open file descriptors (Linux). */
export function openFdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Ends a test: kills whatever is left (failing loudly if that was anything) and removes the temp dir. */
export async function cleanup(sb: Sandbox, opts: { keep?: boolean; extraPids?: number[] } = {}): Promise<string[]> {
  const problems: string[] = [];
  const left = killEverything(sb, opts.extraPids ?? []);
  if (left.length) problems.push(`processes were still alive at the end and were killed: ${left.join(', ')}`);
  await waitFor('killed processes to go', () => left.every((p) => !pidAlive(p)), 10_000).catch(() => undefined);
  if (!opts.keep && !process.env['ATLAS_KEEP_TEST_HOME']) fs.rmSync(sb.root, { recursive: true, force: true });
  return problems;
}

/** Runs `fn` with a fresh sandbox and always cleans up; a process left alive fails the test (after any error of `fn`). */
export async function withSandbox<T>(opts: SandboxOptions, fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const sb = makeSandbox(opts);
  let result: T;
  try {
    result = await fn(sb);
  } catch (err) {
    await cleanup(sb, { keep: true }).catch(() => undefined);
    if (err instanceof Error) err.message += ` (home kept at ${sb.home})`;
    throw err;
  }
  const problems = await cleanup(sb);
  if (problems.length) throw new Error(problems.join('; '));
  return result;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

// ---- tasks through the daemon ----------------------------------------------------------------

export async function createWorkspaces(sb: Sandbox): Promise<void> {
  for (const [name, dir] of Object.entries(sb.workspaces)) await call(sb, 'workspace.create', { name, path: dir });
}

export async function startTask(sb: Sandbox, template: string, workspace: string): Promise<TaskRecord> {
  return (await call(sb, 'task.start', { template, workspace })) as TaskRecord;
}

/** Polls task.json (bounded) until `pred` holds; returns the task as it then was. */
export async function waitForTask(sb: Sandbox, ws: string, id: string, what: string, pred: (t: TaskRecord) => boolean, timeoutMs = 20_000): Promise<TaskRecord> {
  let last: TaskRecord | undefined;
  try {
    return await waitFor(
      `task ${id}: ${what}`,
      () => {
        last = readTask(sb, ws, id);
        return pred(last) ? last : undefined;
      },
      timeoutMs,
      20,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; the task is ${last?.status ?? '?'} at step ${last?.current_step ?? '?'}${last?.error ? ` (${last.error})` : ''}`);
  }
}

export { groupAlive } from '../helpers/daemon.js';

export function countLines(file: string, text: string): number {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l === text).length;
  } catch {
    return 0;
  }
}
