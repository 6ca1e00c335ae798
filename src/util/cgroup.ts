// A cgroup (v2) per step attempt, where the system lets this user make one: every process
// the step starts stays in it, whatever it does to escape its process group and session
// (`setsid`, double forks, reparenting to init), so killing the cgroup kills all of it.
//
// Use: `createStepCgroup(key)` for an attempt (undefined when cgroups are not available:
// not cgroup v2, or this user may not create a child of its own cgroup); `add(pid)` the
// step's first process before it runs anything (the gate in process.ts holds it); `killAll()`
// to stop everything in it; `remove()` once it is empty. Creation is cheap (a mkdir).
//
// Where it lives: a directory `atlas-<hash of the home>` under this process's own cgroup
// (from /proc/self/cgroup, on the cgroup2 mount from /proc/self/mountinfo), one child per
// attempt named from its key. No controllers are enabled, so nothing is limited, only grouped.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StepCgroup {
  /** The cgroup's directory. */
  readonly path: string;
  /** Moves a process (and the children it makes from now on) into the cgroup. */
  add(pid: number): Promise<void>;
  /** The processes in it now. */
  pids(): Promise<number[]>;
  /** SIGKILLs every process in it (cgroup.kill, or one by one while frozen on older kernels)
   *  and resolves once it is empty, or after `timeoutMs` with what is still there. */
  killAll(timeoutMs?: number): Promise<number[]>;
  /** Removes the (empty) cgroup; a cgroup still holding processes is killed first. */
  remove(): Promise<void>;
}

let probed: string | null | undefined;

/** The cgroup2 directory this process may create children in, or undefined. */
export function cgroupBase(): string | undefined {
  if (probed !== undefined) return probed ?? undefined;
  probed = probe() ?? null;
  return probed ?? undefined;
}

function probe(): string | undefined {
  if (process.platform !== 'linux' || process.env['ATLAS_NO_CGROUP'] === '1') return undefined;
  try {
    const own = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))
      ?.slice(3);
    if (own === undefined) return undefined;
    const mount = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];
    if (mount === undefined) return undefined;
    const dir = path.join(mount, own);
    fs.accessSync(path.join(dir, 'cgroup.procs'), fs.constants.W_OK);
    return dir;
  } catch {
    return undefined;
  }
}

function groupDir(home: string): string | undefined {
  const base = cgroupBase();
  if (!base) return undefined;
  return path.join(base, `atlas-${crypto.createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 12)}`);
}

/** Makes a cgroup for one attempt, named from `key` (e.g. `<task>.<step>.<attempt>`), or
 *  undefined when the system does not allow it (then only the process group is killed). */
export async function createStepCgroup(home: string, key: string): Promise<StepCgroup | undefined> {
  const parent = groupDir(home);
  if (!parent) return undefined;
  const dir = path.join(parent, key.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 200));
  try {
    await fsp.mkdir(parent, { recursive: true });
    await fsp.mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      // A leftover of a crashed attempt with the same key: empty it, reuse it.
      await killIn(dir, 2000);
    } else {
      return undefined;
    }
  }
  return openCgroup(dir);
}

/** The cgroup of a past attempt (for recovery), if it still exists. */
export function existingStepCgroup(home: string, key: string): StepCgroup | undefined {
  const parent = groupDir(home);
  if (!parent) return undefined;
  const dir = path.join(parent, key.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 200));
  return fs.existsSync(dir) ? openCgroup(dir) : undefined;
}

function openCgroup(dir: string): StepCgroup {
  return {
    path: dir,
    add: (pid) => fsp.writeFile(path.join(dir, 'cgroup.procs'), `${pid}\n`),
    pids: () => pidsIn(dir),
    killAll: (timeoutMs = 5000) => killIn(dir, timeoutMs),
    async remove() {
      for (let tries = 0; ; tries++) {
        try {
          await fsp.rmdir(dir);
          await fsp.rmdir(path.dirname(dir)).catch(() => undefined); // the home's, once its last attempt is gone
          return;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') return;
          if (code !== 'EBUSY' || tries >= 3) throw err;
          await killIn(dir, 2000);
        }
      }
    },
  };
}

/** Out of descriptors for a moment (a burst of steps under a low `ulimit -n`): worth waiting for. */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'EAGAIN']);

async function pidsIn(dir: string): Promise<number[]> {
  for (let tries = 0; ; tries++) {
    try {
      const text = await fsp.readFile(path.join(dir, 'cgroup.procs'), 'utf8');
      return text
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return [];
      // A step's liveness must not fail the step: wait for a descriptor (up to ~5 s).
      if (code && TRANSIENT.has(code) && tries < 100) {
        await sleep(50);
        continue;
      }
      throw err;
    }
  }
}

async function killIn(dir: string, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const viaKill = await fsp.writeFile(path.join(dir, 'cgroup.kill'), '1').then(
    () => true,
    () => false,
  );
  if (!viaKill) {
    // Older kernels: freeze so nothing forks while we kill, kill each, thaw so they can die.
    await fsp.writeFile(path.join(dir, 'cgroup.freeze'), '1').catch(() => undefined);
    for (const pid of await pidsIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await fsp.writeFile(path.join(dir, 'cgroup.freeze'), '0').catch(() => undefined);
  }
  for (;;) {
    const left = await pidsIn(dir);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await sleep(10);
  }
}
