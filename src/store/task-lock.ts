// Cross-process locks on a task (proper-lockfile). proper-lockfile is a lease on the lock
// directory's mtime, which after a kill -9 only frees once `stale` has passed. To recover at
// once we record the holder (pid and start time) beside the lock: a lock whose recorded
// holder is dead is broken immediately. A lock that becomes compromised (its lease was lost,
// for example after a long stall) never crashes the process: the holder is told to stop
// writing.
import fs from 'node:fs';
import lockfile from 'proper-lockfile';
import { AtlasError, errnoCode } from '../errors.js';
import { processStartTicks, sameProcessAlive } from '../util/proc.js';

export const LOCK_STALE_MS = 10_000;

export interface TaskLock {
  /** Set when the lease was lost; the holder must not write under it any more. */
  readonly compromised: boolean;
  release(): Promise<void>;
}

interface Owner {
  pid: number;
  start_ticks: number | null;
}

const myOwner: Owner = { pid: process.pid, start_ticks: processStartTicks(process.pid) };

function lockDir(dir: string): string {
  return `${dir}/task.lock`;
}
function ownerFile(dir: string): string {
  return `${dir}/task.lock.owner`;
}

/** Breaks the lock of `dir` when its recorded holder is no longer alive. Returns whether it did. */
export function breakDeadLock(dir: string): boolean {
  let owner: Owner;
  try {
    owner = JSON.parse(fs.readFileSync(ownerFile(dir), 'utf8')) as Owner;
  } catch {
    return false;
  }
  if (owner.pid === process.pid || sameProcessAlive(owner.pid, owner.start_ticks)) return false;
  try {
    fs.rmdirSync(lockDir(dir));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') return false;
  }
  fs.rmSync(ownerFile(dir), { force: true });
  return true;
}

export interface LockOptions {
  /** How long to keep trying before giving up with a `locked` error. */
  waitMs?: number;
}

export async function lockTaskDir(dir: string, options: LockOptions = {}): Promise<TaskLock> {
  const deadline = Date.now() + (options.waitMs ?? 5_000);
  let compromised = false;
  let delay = 2;
  for (;;) {
    try {
      const release = await lockfile.lock(dir, {
        lockfilePath: lockDir(dir),
        realpath: false,
        stale: LOCK_STALE_MS,
        retries: 0,
        onCompromised: () => {
          compromised = true;
        },
      });
      try {
        fs.writeFileSync(ownerFile(dir), JSON.stringify(myOwner), { mode: 0o600 });
      } catch {
        // Without the owner record the lock still works; it just frees by staleness.
      }
      return {
        get compromised() {
          return compromised;
        },
        async release() {
          fs.rmSync(ownerFile(dir), { force: true });
          await release().catch(() => undefined);
        },
      };
    } catch (err) {
      if (errnoCode(err) !== 'ELOCKED') throw err;
      if (breakDeadLock(dir)) continue;
      if (Date.now() >= deadline) {
        throw new AtlasError('locked', `task ${dir} is locked by another process; try again shortly`, {
          details: { dir },
          retryable: true,
          cause: err,
        });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
}
