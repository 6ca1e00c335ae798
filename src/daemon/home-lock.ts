// One daemon per home: the lock-with-claims protocol of claimed-lock.ts on daemon.lock, with
// the holder (pid, process start time, version, socket) recorded in daemon.json, its pid
// alone in daemon.pid (what `kill $(cat daemon.pid)` and systemd's PIDFile= expect), and
// claims beside the lock (daemon.lock.claim-<pid>-<n>). A kill -9'd daemon's lock is broken
// at once by the next starter; a live holder's never is. Only the lock holder touches the
// socket and these files; daemon.pid is written once the lock is held and removed first.
import fs from 'node:fs';
import { acquireClaimedLock, readOwner, type HeldLock } from '../store/claimed-lock.js';
import { isAtlasError, storageError } from '../errors.js';

export type HomeLock = HeldLock;

export type LockAttempt<O> = { ok: true; lock: HomeLock } | { ok: false; owner: O | undefined };

/** Where the holder is recorded: its pid alone, and the whole record as JSON. */
export interface HolderFiles {
  pid: string;
  owner: string;
}

type Holder = { pid: number; start_ticks: number | null };

/** The recorded holder: daemon.json; else the pid in daemon.pid (an older daemon wrote its JSON record there). */
export function readHolder<O extends Holder>(files: HolderFiles): O | Holder | undefined {
  const owner = readOwner<O>(files.owner);
  if (owner) return owner;
  let text: string;
  try {
    text = fs.readFileSync(files.pid, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (text.startsWith('{')) return readOwner<O>(files.pid);
  const pid = Number(text);
  return Number.isInteger(pid) && pid > 0 ? { pid, start_ticks: null } : undefined;
}

/** Takes the home lock in one try (breaking a dead holder's); when a live daemon holds it, says who. */
export async function acquireHomeLock<O extends Holder>(home: string, lockPath: string, files: HolderFiles, owner: O): Promise<LockAttempt<O | Holder>> {
  let lock: HeldLock;
  try {
    lock = await acquireClaimedLock(
      // proper-lockfile makes the lock with the umask's mode (0755): the home's is 0700.
      { target: home, lockPath, ownerPath: files.owner, claimsBase: lockPath, owner, what: `home ${home}`, lockMode: 0o700, requireRecord: true },
      { waitMs: 0 },
    );
  } catch (err) {
    if (isAtlasError(err, 'locked')) return { ok: false, owner: readHolder<O>(files) };
    throw err;
  }
  try {
    fs.writeFileSync(files.pid, `${owner.pid}\n`, { mode: 0o600 });
  } catch (err) {
    await lock.release();
    throw storageError('write', files.pid, err);
  }
  return {
    ok: true,
    lock: {
      get compromised() {
        return lock.compromised;
      },
      async release() {
        // A lost lock may have a new holder by now: its pid file is not ours to remove.
        if (!lock.compromised) fs.rmSync(files.pid, { force: true });
        await lock.release();
      },
    },
  };
}
