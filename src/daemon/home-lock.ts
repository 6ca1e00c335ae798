// One daemon per home: the lock-with-claims protocol of claimed-lock.ts on daemon.lock, with
// the holder (pid, process start time, version, socket) recorded in daemon.pid and claims
// beside the lock (daemon.lock.claim-<pid>-<n>). A kill -9'd daemon's lock is broken at once
// by the next starter; a live holder's never is. Only the lock holder touches the socket and
// the pid file.
import { acquireClaimedLock, readOwner, type HeldLock } from '../store/claimed-lock.js';
import { isAtlasError } from '../errors.js';

export type HomeLock = HeldLock;

export type LockAttempt<O> = { ok: true; lock: HomeLock } | { ok: false; owner: O | undefined };

/** Takes the home lock in one try (breaking a dead holder's); when a live daemon holds it, says who. */
export async function acquireHomeLock<O extends { pid: number; start_ticks: number | null }>(home: string, lockPath: string, pidFile: string, owner: O): Promise<LockAttempt<O>> {
  try {
    const lock = await acquireClaimedLock(
      // proper-lockfile makes the lock with the umask's mode (0755): the home's is 0700.
      { target: home, lockPath, ownerPath: pidFile, claimsBase: lockPath, owner, what: `home ${home}`, lockMode: 0o700, requireRecord: true },
      { waitMs: 0 },
    );
    return { ok: true, lock };
  } catch (err) {
    if (isAtlasError(err, 'locked')) return { ok: false, owner: readOwner<O>(pidFile) };
    throw err;
  }
}
