// Cross-process locks on a task (proper-lockfile). proper-lockfile is a lease on the lock
// directory's mtime, which after a kill -9 only frees once `stale` has passed. To recover at
// once we record the holder (pid and start time) beside the lock: a lock whose recorded
// holder is dead is broken immediately. A lock that becomes compromised (its lease was lost,
// for example after a long stall) never crashes the process: the holder is told to stop
// writing.
//
// Liveness is judged by claims, not by the owner record alone: the owner record is written
// after the lock is taken and removed before it is released, so a holder killed in either gap
// would leave a lock with no record, which nobody could break until it went stale. Each
// attempt therefore writes its own claim (`<owner>.claim-<pid>-<n>`) before it tries the lock
// and removes it only once the lock is gone (a loser removes it at once). While the lock
// exists its holder's claim exists, so when every claim names a dead process the holder is dead.
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { processStartTicks, sameProcessAlive } from '../util/proc.js';

export const LOCK_STALE_MS = 10_000;

export interface TaskLock {
  /** Set when the lease was lost; the holder must not write under it any more. */
  readonly compromised: boolean;
  release(): Promise<void>;
}

export interface Owner {
  pid: number;
  start_ticks: number | null;
  [key: string]: unknown;
}

export const myOwner: Owner = { pid: process.pid, start_ticks: processStartTicks(process.pid) };

const CLAIM_MARK = '.claim-';
let claimCounter = 0;

function lockDir(dir: string): string {
  return `${dir}/task.lock`;
}
function ownerFile(dir: string): string {
  return `${dir}/task.lock.owner`;
}

function removeQuietly(file: string | undefined): void {
  if (file === undefined) return;
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // its directory may be gone (a deleted task)
  }
}

/** Writes this attempt's claim. Its name carries our pid, so it counts even if a full disk left it empty. */
function writeClaim(ownerPath: string): string | undefined {
  claimCounter = (claimCounter + 1) % 1_000_000_000;
  const file = `${ownerPath}${CLAIM_MARK}${process.pid}-${claimCounter}`;
  try {
    fs.writeFileSync(file, JSON.stringify(myOwner), { mode: 0o600 });
  } catch {
    // checked below
  }
  return fs.existsSync(file) ? file : undefined;
}

interface Claim {
  file: string;
  pid: number;
  start_ticks: number | null;
}

function readClaims(ownerPath: string): Claim[] {
  const dir = path.dirname(ownerPath);
  const prefix = `${path.basename(ownerPath)}${CLAIM_MARK}`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Claim[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-\d+$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const file = path.join(dir, name);
    const pid = Number(m[1]);
    let start_ticks: number | null = null;
    try {
      const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Owner>;
      if (rec.pid === pid && typeof rec.start_ticks === 'number') start_ticks = rec.start_ticks;
    } catch {
      // empty or half-written: judge by the pid alone
    }
    out.push({ file, pid, start_ticks });
  }
  return out;
}

function isDead(owner: { pid: unknown; start_ticks?: unknown }): boolean {
  if (typeof owner.pid !== 'number') return false;
  const ticks = typeof owner.start_ticks === 'number' ? owner.start_ticks : null;
  // Our own pid too: a dead predecessor with our pid (PID 1 in a container) differs in start time.
  return !sameProcessAlive(owner.pid, ticks);
}

/** Breaks the lock at `lockPath` when the holder recorded beside `ownerPath` is no longer alive.
 *  Also clears the claims of dead contenders when no lock is left. */
export function breakDeadOwnedLock(lockPath: string, ownerPath: string): boolean {
  const claims = readClaims(ownerPath);
  if (claims.length > 0) {
    if (!claims.every(isDead)) return false;
  } else {
    // No claim (a lock taken by an older atlas): judge by the owner record alone.
    let owner: Owner;
    try {
      owner = JSON.parse(fs.readFileSync(ownerPath, 'utf8')) as Owner;
    } catch {
      return false;
    }
    if (!isDead(owner)) return false;
  }
  // The record goes before the lock, so it can never remove the record of a new holder.
  removeQuietly(ownerPath);
  try {
    fs.rmdirSync(lockPath);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') return false;
  }
  for (const c of claims) removeQuietly(c.file);
  return true;
}

/** Breaks the lock of task directory `dir` when its recorded holder is no longer alive. */
export function breakDeadLock(dir: string): boolean {
  return breakDeadOwnedLock(lockDir(dir), ownerFile(dir));
}

export interface LockOptions {
  /** How long to keep trying before giving up with a `locked` error (0: one try). */
  waitMs?: number;
}

export interface OwnedLockSpec {
  /** The path proper-lockfile guards (need not exist). */
  target: string;
  lockPath: string;
  /** Where the holder's identity is written once the lock is held. */
  ownerPath: string;
  owner?: Owner;
  what: string;
}

/** A proper-lockfile lock that records its holder, so a dead holder's lock is broken at once. */
export async function acquireOwnedLock(spec: OwnedLockSpec, options: LockOptions = {}): Promise<TaskLock> {
  const deadline = Date.now() + (options.waitMs ?? 5_000);
  let compromised = false;
  let delay = 2;
  for (;;) {
    const claim = writeClaim(spec.ownerPath);
    try {
      const release = await lockfile.lock(spec.target, {
        lockfilePath: spec.lockPath,
        realpath: false,
        stale: LOCK_STALE_MS,
        retries: 0,
        onCompromised: () => {
          compromised = true;
        },
      });
      try {
        fs.writeFileSync(spec.ownerPath, JSON.stringify(spec.owner ?? myOwner), { mode: 0o600 });
      } catch {
        // The claim still identifies the holder; the record is for people and status commands.
      }
      return {
        get compromised() {
          return compromised;
        },
        async release() {
          // A lost lock may have a new holder by now: its record is not ours to remove.
          if (!compromised) removeQuietly(spec.ownerPath);
          await release().catch(() => undefined);
          removeQuietly(claim);
        },
      };
    } catch (err) {
      removeQuietly(claim);
      if (errnoCode(err) === 'ENOENT') {
        throw new AtlasError('not_found', `${spec.what} no longer exists`, { details: { lock: spec.lockPath }, cause: err });
      }
      if (errnoCode(err) !== 'ELOCKED') throw storageError('lock', spec.lockPath, err);
      if (breakDeadOwnedLock(spec.lockPath, spec.ownerPath)) continue;
      if (Date.now() >= deadline) {
        throw new AtlasError('locked', `${spec.what} is locked by another process; try again shortly`, {
          details: { lock: spec.lockPath },
          retryable: true,
          cause: err,
        });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
}

export function lockTaskDir(dir: string, options: LockOptions = {}): Promise<TaskLock> {
  return acquireOwnedLock({ target: dir, lockPath: lockDir(dir), ownerPath: ownerFile(dir), what: `task ${dir}` }, options);
}
