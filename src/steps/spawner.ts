// The daemon's side of the spawner process (spawner-main.ts): one small long-lived child,
// started on first use and again after it dies, that creates the step processes so the
// daemon's main thread never forks its own large address space.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { storageError } from '../errors.js';
import type { SpawnerReply, SpawnerRequest } from './spawner-protocol.js';

export interface SpawnRequest {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  out: string;
  err: string;
  status: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The spawner's script: beside this module (unbundled), or beside the daemon's bundle. */
function scriptPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'spawner-main.js'), path.join(here, 'spawner.mjs'), path.join(here, 'src', 'steps', 'spawner-main.js')]) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`the spawner script was not found next to ${here}`);
}

type Spawned = { pid: number; start_ticks: number | null };

class SpawnerClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: Spawned): void; reject(e: Error): void; cwd: string }>();
  private readonly exits = new Map<number, Exit>();
  private readonly waiters = new Map<number, (e: Exit | undefined) => void>();

  /** Starts a gated process; resolves with its pid (its pgid too) and start time. */
  spawn(req: SpawnRequest): Promise<Spawned> {
    const child = this.ensure();
    const id = this.nextId++;
    return new Promise<Spawned>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, cwd: req.cwd });
      this.refresh();
      this.send(child, { t: 'spawn', id, ...req });
    });
  }

  go(pid: number, stdin: string | undefined): void {
    if (this.child) this.send(this.child, { t: 'go', pid, stdin });
  }

  abort(pid: number): void {
    if (this.child) this.send(this.child, { t: 'abort', pid });
    else
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
  }

  /** The exit of a process this spawner started; undefined if the spawner died first (then poll). */
  exit(pid: number): Promise<Exit | undefined> {
    const known = this.exits.get(pid);
    if (known) {
      this.exits.delete(pid);
      return Promise.resolve(known);
    }
    if (!this.child) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiters.set(pid, resolve);
      this.refresh();
    });
  }

  /** Forgets a process whose exit nobody will wait for. */
  forget(pid: number): void {
    this.exits.delete(pid);
  }

  /** Stops the spawner (the daemon is exiting); processes it started run on. */
  close(): void {
    const child = this.child;
    if (!child) return;
    this.onDeath(child);
    if (child.connected) child.disconnect();
  }

  private ensure(): ChildProcess {
    if (this.child?.connected) return this.child;
    if (this.child) this.onDeath(this.child);
    const child = fork(scriptPath(), [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      execArgv: ['--max-old-space-size=32'],
      serialization: 'json',
    });
    this.child = child;
    child.on('message', (m: SpawnerReply) => this.onMessage(m));
    child.on('error', () => undefined);
    child.once('exit', () => this.onDeath(child));
    child.unref();
    this.refresh();
    return child;
  }

  private onMessage(m: SpawnerReply): void {
    if (m.t === 'spawned') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ('error' in m) {
        // Out of descriptors or processes: nothing ran, and trying again later can work.
        const transient = m.code === 'EMFILE' || m.code === 'ENFILE' || m.code === 'EAGAIN' || m.code === 'ENOMEM';
        p.reject(transient ? storageError('start a process in', p.cwd, Object.assign(new Error(m.error), { code: m.code })) : Object.assign(new Error(m.error), { spawnError: true }));
      } else p.resolve({ pid: m.pid, start_ticks: m.start_ticks });
    } else if (m.t === 'exit') {
      const w = this.waiters.get(m.pid);
      if (w) {
        this.waiters.delete(m.pid);
        w({ code: m.code, signal: m.signal });
      } else this.exits.set(m.pid, { code: m.code, signal: m.signal });
    }
    this.refresh();
  }

  private onDeath(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    for (const p of this.pending.values()) p.reject(storageError('start a process in', p.cwd, Object.assign(new Error('the spawner process exited'), { code: 'EAGAIN' })));
    this.pending.clear();
    for (const w of this.waiters.values()) w(undefined);
    this.waiters.clear();
  }

  private send(child: ChildProcess, msg: SpawnerRequest): void {
    if (child.connected) child.send(msg);
  }

  /** Keeps this process alive only while it waits for the spawner. */
  private refresh(): void {
    const ch = (this.child as unknown as { channel?: { ref(): void; unref(): void } } | undefined)?.channel;
    if (!ch) return;
    if (this.pending.size > 0 || this.waiters.size > 0) ch.ref();
    else ch.unref();
  }
}

export const spawner = new SpawnerClient();
