// Running a step's command detached from the daemon's life, or re-attaching to one that an
// earlier daemon started.
//
// The command is created by the spawner (spawner.ts), gated (spawner-protocol.ts): pid,
// process group and start time are checkpointed before it runs anything. Its stdout and
// stderr go to the attempt's files, which this module tails into the output sink; its end
// comes from the spawner (code or signal) or, for a re-attached process the daemon is not
// the parent of, from the status file the gate writes. The timeout counts from the
// process's recorded start, so a restart neither resets nor extends it.
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { StepProcess } from '../store/records.js';
import { existingStepCgroup, type StepCgroup } from '../util/cgroup.js';
import { processGroupAlive, sameProcessAlive } from '../util/proc.js';
import { readStatus, type AttemptFiles } from './attempt-files.js';
import type { OutputSink, RunOptions, RunResult, StreamName } from './process.js';
import { joinCgroup, signalName, stopTree, sleep } from './process.js';
import { spawner, type Exit } from './spawner.js';
import { RssSampler } from './rss-sampler.js';

export interface DetachedOptions extends RunOptions {
  files: AttemptFiles;
  /** The home (its cgroup, where the system allows one per attempt). */
  home: string;
  /** Which command of the step this is (its status file). */
  commandIndex: number;
  /** Re-attach to this process instead of starting one. */
  attach?: StepProcess | undefined;
  /** Where the output files were already read up to (re-attach), per stream. */
  offsets?: Record<StreamName, number> | undefined;
  /** True when an abort means "leave it running" (daemon restart), not "stop it". */
  detaching?: (() => boolean) | undefined;
}

const TAIL_MS = 100;
const POLL_MS = 100;

export async function runDetached(opts: DetachedOptions): Promise<RunResult> {
  const started = performance.now();
  let proc: StepProcess;
  let exitFromSpawner: Promise<Exit | undefined>;
  let startOffsets: Record<StreamName, number> | undefined;
  let cgroup: StepCgroup | undefined;
  if (opts.attach) {
    proc = opts.attach;
    cgroup = existingStepCgroup(opts.home, `step-${proc.pid}`);
    exitFromSpawner = Promise.resolve(undefined);
  } else {
    // The step's earlier commands wrote to the same files: this one's output starts at their end.
    startOffsets = { stdout: sizeOf(opts.files.out), stderr: sizeOf(opts.files.err) };
    let spawned: { pid: number; start_ticks: number | null };
    try {
      spawned = await spawner.spawn({ command: opts.command, cwd: opts.cwd, env: opts.env, out: opts.files.out, err: opts.files.err, status: opts.files.status(opts.commandIndex) });
    } catch (err) {
      if ((err as { spawnError?: boolean }).spawnError) {
        return { exitCode: null, signal: null, timedOut: false, canceled: false, durationMs: performance.now() - started, spawnError: (err as Error).message };
      }
      throw err;
    }
    proc = { pid: spawned.pid, pgid: spawned.pid, start_ticks: spawned.start_ticks, started_at: new Date().toISOString(), run: opts.files.base, command_index: opts.commandIndex };
    exitFromSpawner = spawner.exit(proc.pid);
    // Where the system allows it, the gate joins a cgroup of its own before it runs anything.
    cgroup = await joinCgroup(opts.home, proc.pid);
    if (opts.onSpawn) {
      try {
        await opts.onSpawn(proc);
      } catch (err) {
        // Could not record it: the command must not run. Closing the gate makes it exit.
        spawner.abort(proc.pid);
        await exitFromSpawner;
        await cgroup?.remove().catch(() => undefined);
        throw err;
      }
    }
  }
  const pid = proc.pid;
  const tail = new FilesTail(opts.files, opts.attach ? opts.offsets : startOffsets, opts.output);
  const rss = new RssSampler(pid);
  const ticker = setInterval(() => {
    void tail.poll();
    rss.sample();
  }, TAIL_MS);

  let timedOut = false;
  let canceled = false;
  let detached = false;
  let stopping: Promise<void> | undefined;
  let ended!: Promise<Exit | undefined>;
  const stop = () => (stopping ??= stopTree(pid, opts.killGraceMs, ended, cgroup));
  const waitEnd = new AbortController();
  const onAbort = () => {
    if (opts.detaching?.()) {
      detached = true;
      waitEnd.abort();
      return;
    }
    canceled = true;
    void stop();
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    if (opts.signal.aborted && !opts.attach && !opts.detaching?.()) {
      canceled = true;
      spawner.abort(pid);
    } else if (opts.signal.aborted) {
      onAbort();
    } else {
      opts.signal.addEventListener('abort', onAbort, { once: true });
      if (opts.timeoutMs !== undefined && opts.timeoutMs !== null) {
        // From the recorded start: a re-attached step keeps its original deadline.
        const left = opts.attach ? opts.timeoutMs - Math.max(0, Date.now() - Date.parse(proc.started_at)) : opts.timeoutMs;
        timer = setTimeout(
          () => {
            timedOut = true;
            void stop();
          },
          Math.max(0, left),
        );
      }
      if (!opts.attach) spawner.go(pid, opts.stdin);
      rss.sample();
    }
    ended = Promise.race([waitForEnd(proc, exitFromSpawner, waitEnd.signal), new Promise<undefined>((r) => waitEnd.signal.addEventListener('abort', () => r(undefined), { once: true }))]);
    const exit = await ended;
    if (detached) {
      // Its cgroup stays, for the daemon that re-attaches.
      cgroup = undefined;
      clearInterval(ticker);
      await tail.poll();
      tail.close();
      return { exitCode: null, signal: null, timedOut: false, canceled: true, detached: true, durationMs: performance.now() - started, process: proc };
    }
    const weStoppedIt = timedOut || canceled;
    // Whatever the command left running in its group goes with it.
    if (processGroupAlive(pid) || (cgroup && (await cgroup.pids()).length > 0)) await stop();
    if (stopping) await stopping;
    clearInterval(ticker);
    await tail.poll();
    tail.close();
    const status = readStatus(opts.files.status(opts.commandIndex));
    let code = exit ? exit.code : (status?.code ?? null);
    let signal = exit?.signal ?? null;
    if (!exit && !status && !weStoppedIt) {
      // It ended while no daemon watched and left no status: nothing says how it went.
      return { exitCode: null, signal: null, timedOut, canceled, durationMs: performance.now() - started, lost: true, process: proc };
    }
    // When we stopped the tree, the gate shell may exit on its own with 128+N after its child
    // died of our signal N, a moment before the signal reaches the shell itself: that is
    // still a kill by signal N, not an exit code.
    if (weStoppedIt && !signal && code !== null && code > 128) {
      signal = signalName(code - 128);
      if (signal) code = null;
    }
    if (weStoppedIt && code === null && !signal) signal = 'SIGKILL';
    return { exitCode: signal ? null : code, signal, timedOut, canceled, durationMs: performance.now() - started, cpuMs: status?.cpu_ms ?? null, peakRssKb: rss.peakKb, process: proc };
  } finally {
    clearInterval(ticker);
    if (timer) clearTimeout(timer);
    opts.signal.removeEventListener('abort', onAbort);
    tail.close();
    await cgroup?.remove().catch(() => undefined);
  }
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The spawner's word when it has one; else (re-attached, or the spawner died) poll the process. */
async function waitForEnd(proc: StepProcess, fromSpawner: Promise<Exit | undefined>, signal: AbortSignal): Promise<Exit | undefined> {
  const e = await fromSpawner;
  if (e) return e;
  while (!signal.aborted && sameProcessAlive(proc.pid, proc.start_ticks)) await sleep(POLL_MS, signal);
  return undefined;
}

/** Reads what the process appended to its .out and .err files since the last poll. */
class FilesTail {
  private readonly streams: Array<{ name: StreamName; file: string; fd: number | undefined; pos: number; decoder: StringDecoder }>;
  private busy: Promise<void> | undefined;

  constructor(
    files: AttemptFiles,
    offsets: Record<StreamName, number> | undefined,
    private readonly sink: OutputSink | undefined,
  ) {
    this.streams = [
      { name: 'stdout', file: files.out, fd: undefined, pos: offsets?.stdout ?? 0, decoder: new StringDecoder('utf8') },
      { name: 'stderr', file: files.err, fd: undefined, pos: offsets?.stderr ?? 0, decoder: new StringDecoder('utf8') },
    ];
  }

  poll(): Promise<void> {
    // One read at a time; a poll during a poll waits for it and reads again.
    const run = async () => {
      for (const s of this.streams) {
        if (s.fd === undefined) {
          try {
            s.fd = fs.openSync(s.file, 'r');
          } catch {
            continue;
          }
        }
        const buf = Buffer.allocUnsafe(64 * 1024);
        for (;;) {
          const n = await new Promise<number>((resolve) => fs.read(s.fd!, buf, 0, buf.length, s.pos, (err, bytes) => resolve(err ? 0 : bytes)));
          if (n <= 0) break;
          s.pos += n;
          const text = s.decoder.write(buf.subarray(0, n));
          if (text && this.sink) this.sink.write(s.name, text, s.pos);
          if (n < buf.length) break;
        }
      }
    };
    const next = (this.busy ?? Promise.resolve()).then(run);
    this.busy = next.catch(() => undefined);
    return next;
  }

  close(): void {
    for (const s of this.streams) {
      const rest = s.decoder.end();
      if (rest && this.sink) this.sink.write(s.name, rest, s.pos);
      s.decoder = new StringDecoder('utf8');
      if (s.fd !== undefined) fs.closeSync(s.fd);
      s.fd = undefined;
    }
  }
}
