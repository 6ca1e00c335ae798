// The lock-with-claims protocol, the one lock atlas takes on disk: the home lock (one daemon
// per home, daemon.lock + daemon.pid) and the task locks (task.lock + task.lock.owner).
//
// The lock itself is proper-lockfile's: a directory whose mtime the holder keeps fresh, and
// which others may take over once it is `stale` (10 s untouched). A kill -9 would then hold
// everyone up for those 10 s, so the holder is recorded beside the lock and a lock nobody
// alive can hold is broken at once. Taking the lock, step by step:
//   1. write a claim `<claims>.claim-<pid>-<n>` (pid and process start time);
//   2. try the lock; a loser removes its claim at once;
//   3. the winner writes the owner record (`ownerPath`) for people and status commands;
//   release: remove the record, release the lock, remove the claim (in that order).
// While the lock exists its holder's claim exists, so a holder killed at any point leaves a
// claim naming a dead process. A lock is broken only when nobody who may hold it is alive:
// every claim and the owner record name dead processes (pid gone, or reused: the start time
// differs), and there is at least one of them to judge by. A lock with neither is never
// broken on a guess; it goes stale. A lock that becomes compromised (its lease was lost, for
// example after a long stall) never crashes the process: the holder is told to stop writing.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { processStartTicks, sameProcessAlive } from '../util/proc.js';

export const LOCK_STALE_MS = 10_000;

export interface HeldLock {
  /** Set when the lease was lost; the holder must not write under it any more. */
  readonly compromised: boolean;
  release(): Promise<void>;
}

/** Who holds (or claims) a lock: the pid and the process's start time, plus anything to show. */
export interface Owner {
  pid: number;
  start_ticks: number | null;
  [key: string]: unknown;
}

export const myOwner: Owner = { pid: process.pid, start_ticks: processStartTicks(process.pid) };

export interface ClaimedLockSpec {
  /** The path proper-lockfile guards (need not exist). */
  target: string;
  /** The lock directory. */
  lockPath: string;
  /** Where the holder's record is written once the lock is held. */
  ownerPath: string;
  /** The claims are `<claimsBase>.claim-<pid>-<n>`. */
  claimsBase: string;
  /** What the holder records (default: this process). */
  owner?: Owner;
  /** Names the locked thing in errors. */
  what: string;
  /** The lock directory's mode (default: as proper-lockfile makes it). */
  lockMode?: number;
  /** The owner record must be written, or the lock is given back (default: best effort). */
  requireRecord?: boolean;
}

export interface LockOptions {
  /** How long to keep trying before giving up with a `locked` error (0: one try). */
  waitMs?: number;
}

const CLAIM_MARK = '.claim-';
let claimCounter = 0;

function removeQuietly(file: string | undefined): void {
  if (file === undefined) return;
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // its directory may be gone (a deleted task)
  }
}

/** Writes this attempt's claim. Its name carries our pid, so it counts even if a full disk left it empty. */
function writeClaim(claimsBase: string): string | undefined {
  claimCounter = (claimCounter + 1) % 1_000_000_000;
  const file = `${claimsBase}${CLAIM_MARK}${process.pid}-${claimCounter}`;
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

/** The claims beside a lock; `<pid>` alone (an older atlas's home-lock claim) counts too. */
function readClaims(claimsBase: string): Claim[] {
  const dir = path.dirname(claimsBase);
  const prefix = `${path.basename(claimsBase)}${CLAIM_MARK}`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: Claim[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)(?:-\d+)?$/.exec(name.slice(prefix.length));
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

export function readOwner<O = Owner>(ownerPath: string): O | undefined {
  try {
    return JSON.parse(fs.readFileSync(ownerPath, 'utf8')) as O;
  } catch {
    return undefined;
  }
}

function isDead(owner: { pid: unknown; start_ticks?: unknown }): boolean {
  if (typeof owner.pid !== 'number') return false;
  const ticks = typeof owner.start_ticks === 'number' ? owner.start_ticks : null;
  // Our own pid too: a dead predecessor with our pid (PID 1 in a container) differs in start time.
  return !sameProcessAlive(owner.pid, ticks);
}

/** Breaks the lock when nobody who may hold it is alive (see the top of this file). Also
 *  clears the claims of dead contenders when no lock is left. */
export function breakDeadClaimedLock(spec: Pick<ClaimedLockSpec, 'lockPath' | 'ownerPath' | 'claimsBase'>): boolean {
  const claims = readClaims(spec.claimsBase);
  if (!claims.every(isDead)) return false;
  const owner = readOwner<{ pid: unknown; start_ticks?: unknown }>(spec.ownerPath);
  if (owner === undefined && claims.length === 0) return false;
  if (owner !== undefined && !isDead(owner)) return false;
  // The record goes before the lock, so it can never remove the record of a new holder.
  removeQuietly(spec.ownerPath);
  try {
    fs.rmdirSync(spec.lockPath);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') return false;
  }
  for (const c of claims) removeQuietly(c.file);
  return true;
}

/** Takes the lock (see the top of this file); `locked` (retryable) once `waitMs` has passed. */
export async function acquireClaimedLock(spec: ClaimedLockSpec, options: LockOptions = {}): Promise<HeldLock> {
  const deadline = Date.now() + (options.waitMs ?? 5_000);
  let delay = 2;
  for (;;) {
    let compromised = false;
    const claim = writeClaim(spec.claimsBase);
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(spec.target, {
        lockfilePath: spec.lockPath,
        realpath: false,
        stale: LOCK_STALE_MS,
        retries: 0,
        onCompromised: () => {
          compromised = true;
        },
      });
    } catch (err) {
      removeQuietly(claim);
      if (errnoCode(err) === 'ENOENT') {
        throw new AtlasError('not_found', `${spec.what} no longer exists`, { details: { lock: spec.lockPath }, cause: err });
      }
      if (errnoCode(err) !== 'ELOCKED') throw storageError('lock', spec.lockPath, err);
      if (breakDeadClaimedLock(spec)) continue;
      if (Date.now() >= deadline) {
        throw new AtlasError('locked', `${spec.what} is locked by another process; try again shortly`, {
          details: { lock: spec.lockPath },
          retryable: true,
          cause: err,
        });
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
      continue;
    }
    let failure: unknown;
    try {
      if (spec.lockMode !== undefined) fs.chmodSync(spec.lockPath, spec.lockMode);
    } catch (err) {
      failure = err;
    }
    try {
      fs.writeFileSync(spec.ownerPath, JSON.stringify(spec.owner ?? myOwner) + '\n', { mode: 0o600 });
    } catch (err) {
      // The claim still identifies the holder; the record is for people and status commands.
      if (spec.requireRecord) failure ??= err;
    }
    if (failure !== undefined) {
      removeQuietly(spec.ownerPath);
      await release().catch(() => undefined);
      removeQuietly(claim);
      throw storageError('lock', spec.lockPath, failure);
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
  }
}
