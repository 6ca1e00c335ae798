// Shared helpers for the store tests: temp homes, task records, a tree snapshot, and child
// process fixtures with bounded waits. Every wait here has a deadline; nothing sleeps to
// "let things settle".
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isAtlasError, type AtlasError, type ErrorCode } from '../../src/errors.js';
import { SCHEMA_VERSION, type TaskRecord } from '../../src/store/records.js';
import { FsStore, type StoreOptions } from '../../src/store/fs-store.js';
import { waitFor } from '../helpers/daemon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Compiled fixtures live at dist/test/fixtures/NAME.js. */
export const FIXTURES_DIR = path.resolve(here, '../fixtures');

export interface TempHome {
  /** The mkdtemp directory; the home is a child of it, so escapes above the home are visible too. */
  root: string;
  home: string;
  store: FsStore;
  cleanup(): Promise<void>;
}

export async function tempHome(options: StoreOptions = {}): Promise<TempHome> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-store-test-'));
  const home = path.join(root, 'home');
  const store = new FsStore(home, options);
  await store.init();
  return {
    root,
    home,
    store,
    async cleanup() {
      await store.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function addWorkspace(store: FsStore, name: string, dir = os.tmpdir()): Promise<void> {
  await store.workspaces.create({ name, path: dir, kind: 'path', repo: null, branch: null });
}

export function makeTask(id: string, workspace: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  const now = new Date().toISOString();
  return {
    schema_version: SCHEMA_VERSION,
    id,
    workspace,
    template: 'build',
    description: `task ${id}`,
    inputs: {},
    status: 'pending',
    current_step: 0,
    steps: [
      {
        name: 'compile',
        type: 'shell',
        status: 'pending',
        attempts: 0,
        started_at: null,
        completed_at: null,
        error: null,
        definition: { name: 'compile', type: 'shell', run: 'true' },
        process: null,
        deadline: null,
        next_attempt_at: null,
      },
    ],
    step_results: [],
    transitions: [{ from_status: null, to_status: 'pending', timestamp: now, reason: 'created' }],
    priority: 0,
    created_at: now,
    updated_at: now,
    completed_at: null,
    revision: 0,
    error: null,
    workdir: os.tmpdir(),
    env: {},
    ...overrides,
  };
}

/** Creates a task with a fresh id in `workspace`. */
export async function addTask(store: FsStore, workspace: string, overrides: Partial<TaskRecord> = {}, now?: Date): Promise<TaskRecord> {
  const id = await store.tasks.newTaskId(now);
  return store.tasks.createTask(makeTask(id, workspace, overrides));
}

/** Asserts that `fn` throws (or rejects with) an AtlasError with `code`; returns it. */
export async function expectCode(fn: () => unknown, code: ErrorCode): Promise<AtlasError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  if (!isAtlasError(caught, code)) {
    throw new Error(`expected an AtlasError with code '${code}', got ${caught === undefined ? 'no error' : String((caught as Error)?.stack ?? caught)}`);
  }
  return caught;
}

/** Every path under `root` with its type, for before/after comparisons. */
export function snapshotTree(root: string): string[] {
  const out: string[] = [];
  (function walk(dir: string) {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      out.push(`${path.relative(root, p)}${e.isDirectory() ? '/' : ''}`);
      if (e.isDirectory()) walk(p);
    }
  })(root);
  return out.sort();
}

/** Rejects after `ms` with a message naming `what`; the timer never outlives the promise. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` every few ms until it holds, failing after `ms`. For conditions with no event to wait on. */
export async function until(ms: number, what: string, cond: () => boolean): Promise<void> {
  await waitFor(what, cond, ms, 10);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running fixture: its stdout lines can be awaited, and it is always reaped. */
export class Fixture {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  readonly lines: string[] = [];
  stderr = '';
  private waiters: Array<{ test: (l: string) => boolean; resolve: (l: string) => void }> = [];

  constructor(name: string, args: string[]) {
    this.child = spawn(process.execPath, [path.join(FIXTURES_DIR, `${name}.js`), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(line)) return true;
        w.resolve(line);
        return false;
      });
    });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s;
    });
    // A killed child closes its stdin pipe; writes racing that must not crash the test.
    this.child.stdin!.on('error', () => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Waits for a stdout line for which `test` holds (or that equals it), failing if the child exits first. */
  waitForLine(test: string | ((l: string) => boolean), ms = 15_000): Promise<string> {
    const fn = typeof test === 'string' ? (l: string) => l === test : test;
    const seen = this.lines.find(fn);
    if (seen !== undefined) return Promise.resolve(seen);
    const line = new Promise<string>((resolve) => this.waiters.push({ test: fn, resolve }));
    const died = this.exited.then((e) => {
      throw new Error(`fixture ${this.pid} exited (${e.code ?? e.signal}) before printing the line; stderr: ${this.stderr}`);
    });
    return within(ms, `a line from fixture ${this.pid}`, Promise.race([line, died]));
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Waits for a normal exit and asserts status 0, showing stderr otherwise. */
  async succeeded(ms = 30_000): Promise<void> {
    const e = await within(ms, `fixture ${this.pid} to exit`, this.exited);
    if (e.code !== 0) throw new Error(`fixture ${this.pid} failed (${e.code ?? e.signal}): ${this.stderr}`);
  }

  async kill(): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return within(10_000, `fixture ${this.pid} to die`, this.exited);
  }
}

/** Kills (SIGKILL) every fixture still running; for `finally` blocks. */
export async function reap(fixtures: Fixture[]): Promise<void> {
  await Promise.all(fixtures.map((f) => f.kill().catch(() => undefined)));
}

/** A pid that certainly belonged to a process that has exited. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid;
  await within(10_000, 'a short-lived child to exit', new Promise((r) => child.once('exit', r)));
  if (pid === undefined) throw new Error('could not spawn a child');
  return pid;
}

export function mode(p: string): number {
  return fs.statSync(p).mode & 0o777;
}
