// Running a step's command as its own process group, and stopping it.
//
// The gate: every command starts as `/bin/sh -c GATE atlas-step <command>` in a new session
// (so its pgid is its pid). The gate shell blocks reading a first line, "go", from its
// standard input before it runs anything (the rest of stdin, if any, is the command's), so
// the engine can checkpoint the pid, pgid and start time first and only then say "go". If
// the daemon dies before that, the pipe closes, the read fails and the gate exits without
// side effects. Recovery therefore always knows which process tree to kill.
//
// Stopping: SIGTERM to the process group and to the tree (tree-kill, for descendants that
// left the group), then SIGKILL after a grace period if anything is still alive. Where the
// system allows a cgroup per attempt (util/cgroup.ts), the gate is put in one before it says
// "go", and everything in it is killed as well: that catches what escapes both the group and
// the tree walk (a double-forked `setsid` grandchild reparented to init). A process
// ended by a signal is reported with that signal and a null exit code, never as exit 0.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as delay } from 'node:timers/promises';
import treeKill from 'tree-kill';
import { errnoCode, storageError } from '../errors.js';
import type { StepProcess } from '../store/records.js';
import { createStepCgroup, type StepCgroup } from '../util/cgroup.js';
import { fdHeadroom, killGroup, processGroupAlive, processStartTicks } from '../util/proc.js';

// sh's `read` takes one byte at a time from a pipe, so it never eats into the command's input.
const GATE = 'IFS= read -r __atlas_go || exit 125; [ "$__atlas_go" = go ] || exit 125; unset __atlas_go; __atlas_cmd=$1; shift; eval "$__atlas_cmd"';

export type StreamName = 'stdout' | 'stderr';

export interface OutputSink {
  /** `end`: where this text ends in the stream's output file, when it comes from one. */
  write(stream: StreamName, text: string, end?: number): void;
}

export interface RunOptions {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  timeoutMs?: number | null | undefined;
  killGraceMs: number;
  /** Piped to the command's standard input; otherwise it reads end-of-file at once. */
  stdin?: string | undefined;
  /** Called once the process exists and before it runs anything: persist `proc` here. */
  onSpawn?: ((proc: StepProcess) => Promise<void>) | undefined;
  output?: OutputSink | undefined;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  canceled: boolean;
  durationMs: number;
  /** The spawn itself failed (for example a missing cwd). */
  spawnError?: string;
  /** Left running on purpose (the daemon restarts): no result yet. */
  detached?: boolean;
  /** Ended while no daemon watched, leaving no exit status: how it went is unknown. */
  lost?: boolean;
  /** CPU time (user + system) of the command's reaped process tree, where known. */
  cpuMs?: number | null;
  /** Peak resident memory (KB) of the command's process tree, sampled while it ran, where known. */
  peakRssKb?: number | null;
  /** The process as recorded before it ran (detached runs). */
  process?: StepProcess;
}

/** Descriptors a spawn needs free: three pipe pairs, plus what the child needs to exec. */
const SPAWN_FD_RESERVE = 16;

function outOfDescriptors(cwd: string): Error {
  const err = Object.assign(new Error('too few file descriptors left to start a process'), { code: 'EMFILE' });
  return storageError('start a process in', cwd, err);
}

export async function runProcess(opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  // A spawn that runs out of descriptors halfway leaks the pipes Node had already made (three
  // per failure, never closed): under a low `ulimit -n` that ends with no descriptor left at
  // all. So refuse before spawning; the engine retries the task from its checkpoint.
  if ((fdHeadroom() ?? Infinity) < SPAWN_FD_RESERVE) throw outOfDescriptors(opts.cwd);
  const child = spawn('/bin/sh', ['-c', GATE, 'atlas-step', opts.command], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    // Out of file descriptors or processes: nothing ran, and trying again later can work. A
    // storage error makes the engine retry the task from its checkpoint instead of failing it.
    const code = errnoCode(spawned);
    if (code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN' || code === 'ENOMEM') throw storageError('start a process in', opts.cwd, spawned);
    return { exitCode: null, signal: null, timedOut: false, canceled: false, durationMs: performance.now() - started, spawnError: spawned?.message ?? 'spawn failed' };
  }
  const pid = child.pid;
  const exited = waitForExit(child, opts.output);
  const gate = child.stdin!;
  gate.on('error', () => undefined); // EPIPE when the command does not read its input
  const cgroup = await joinCgroup(opts.env['ATLAS_HOME'] ?? '', pid);

  if (opts.onSpawn) {
    try {
      await opts.onSpawn({ pid, pgid: pid, start_ticks: processStartTicks(pid), started_at: new Date().toISOString() });
    } catch (err) {
      // Could not record it: the command must not run. Closing the gate makes it exit.
      gate.destroy();
      killGroup(pid, 'SIGKILL');
      await exited;
      await cgroup?.remove().catch(() => undefined);
      throw err;
    }
  }

  let timedOut = false;
  let canceled = false;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopTree(pid, opts.killGraceMs, exited, cgroup));
  const onAbort = () => {
    canceled = true;
    void stop();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    if (opts.signal.aborted) {
      canceled = true;
      gate.destroy();
    } else {
      opts.signal.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined && opts.timeoutMs !== null) {
        // setTimeout runs on libuv's monotonic clock: wall-clock jumps do not move it.
        timer = setTimeout(() => {
          timedOut = true;
          void stop();
        }, opts.timeoutMs);
      }
      gate.end(opts.stdin === undefined ? 'go\n' : `go\n${opts.stdin}`);
    }
    const { code, signal } = await exited;
    const weStoppedIt = timedOut || canceled;
    // Whatever the command left running in its group goes with it.
    if (processGroupAlive(pid) || (cgroup && (await cgroup.pids()).length > 0)) await stop();
    if (stopping) await stopping;
    // When we stopped the tree, the gate shell may exit on its own with 128+N after its child
    // died of our signal N, a moment before the signal reaches the shell itself: that is
    // still a kill by signal N, not an exit code.
    const bySignal = signal ?? (weStoppedIt && code !== null && code > 128 ? signalName(code - 128) : null);
    return { exitCode: bySignal ? null : code, signal: bySignal, timedOut, canceled, durationMs: performance.now() - started };
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal.removeEventListener('abort', onAbort);
    await cgroup?.remove().catch(() => undefined);
  }
}

/** A cgroup for the attempt whose gate is `pid` (still waiting for "go"), where allowed. */
export async function joinCgroup(home: string, pid: number): Promise<StepCgroup | undefined> {
  const cg = await createStepCgroup(home, `step-${pid}`).catch(() => undefined);
  if (!cg) return undefined;
  try {
    await cg.add(pid);
    return cg;
  } catch {
    await cg.remove().catch(() => undefined);
    return undefined;
  }
}

function waitForExit(child: ChildProcess, output: OutputSink | undefined): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = child[name];
    if (!stream) continue;
    const decoder = new StringDecoder('utf8');
    stream.on('data', (chunk: Buffer) => {
      const text = decoder.write(chunk);
      if (text && output) output.write(name, text);
    });
    stream.on('end', () => {
      const rest = decoder.end();
      if (rest && output) output.write(name, rest);
    });
  }
  return new Promise((resolve) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let bound: NodeJS.Timeout | undefined;
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // stdio may be held open by a descendant that escaped the group: do not wait forever.
      bound = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(exit!);
      }, 2000);
      bound.unref();
    });
    child.once('close', (code, signal) => {
      if (bound) clearTimeout(bound);
      resolve(exit ?? { code, signal });
    });
  });
}

/** SIGTERM to the group and tree, then SIGKILL after `graceMs`; resolves when the group is gone. */
export async function stopTree(pid: number, graceMs: number, exited?: Promise<unknown>, cgroup?: StepCgroup): Promise<void> {
  // The tree walk first, while the leader lives: once it dies, a descendant that left the
  // group is reparented to init and no walk from `pid` can find it any more.
  await walkAndKill(pid, 'SIGTERM');
  killGroup(pid, 'SIGTERM');
  for (const p of (await cgroup?.pids()) ?? []) signalPid(p, 'SIGTERM');
  const alive = async () => processGroupAlive(pid) || (cgroup !== undefined && (await cgroup.pids()).length > 0);
  const deadline = performance.now() + graceMs;
  while ((await alive()) && performance.now() < deadline) await sleep(25);
  if (await alive()) {
    await walkAndKill(pid, 'SIGKILL');
    killGroup(pid, 'SIGKILL');
    await cgroup?.killAll();
  }
  if (exited) await exited;
  // A killed group can take a moment to be reaped; wait for it, within reason.
  const reapDeadline = performance.now() + 5000;
  while (processGroupAlive(pid) && performance.now() < reapDeadline) await sleep(10);
}

/**
 * tree-kill walks the tree with `ps`: without descriptors to spare that spawn fails (its
 * callback then never comes), so it is skipped, and it is bounded in time either way.
 */
function walkAndKill(pid: number, signal: NodeJS.Signals): Promise<void> {
  if ((fdHeadroom() ?? Infinity) < SPAWN_FD_RESERVE) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 5000);
    treeKill(pid, signal, () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Kills a leftover process group from an earlier daemon (recovery): no child handle to wait on. */
export async function killLeftoverGroup(pgid: number, graceMs: number): Promise<boolean> {
  if (!processGroupAlive(pgid)) return false;
  await stopTree(pgid, graceMs);
  return true;
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function signalName(n: number): NodeJS.Signals | null {
  const found = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return found ? (found[0] as NodeJS.Signals) : null;
}

/** Waits `ms`, or less when `signal` aborts; never rejects (the caller looks at the signal itself). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}
