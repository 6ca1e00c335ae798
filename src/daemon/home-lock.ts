// One daemon per home: a proper-lockfile lock on daemon.lock, with the holder's pid and
// process start time in daemon.pid. proper-lockfile alone would keep a kill -9'd daemon's
// lock for `stale` ms; the pid file lets the next daemon see at once that the holder is dead
// (pid gone, or reused by another process) and break the lock. Only the lock holder
// touches the socket and the pid file.
import fs from 'node:fs';
import lockfile from 'proper-lockfile';
import { errnoCode, storageError } from '../errors.js';
import { sameProcessAlive } from '../util/proc.js';

const STALE_MS = 10_000;

export interface HomeLock {
  readonly compromised: boolean;
  release(): Promise<void>;
}

export type LockAttempt<O> = { ok: true; lock: HomeLock } | { ok: false; owner: O | undefined };

function readJson<O>(file: string): O | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as O;
  } catch {
    return undefined;
  }
}

export async function acquireHomeLock<O extends { pid: number; start_ticks: number | null }>(home: string, lockPath: string, pidFile: string, owner: O): Promise<LockAttempt<O>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let compromised = false;
    try {
      const release = await lockfile.lock(home, {
        lockfilePath: lockPath,
        realpath: false,
        stale: STALE_MS,
        retries: 0,
        onCompromised: () => {
          compromised = true;
        },
      });
      fs.writeFileSync(pidFile, JSON.stringify(owner) + '\n', { mode: 0o600 });
      return {
        ok: true,
        lock: {
          get compromised() {
            return compromised;
          },
          async release() {
            fs.rmSync(pidFile, { force: true });
            await release().catch(() => undefined);
          },
        },
      };
    } catch (err) {
      if (errnoCode(err) !== 'ELOCKED') throw storageError('lock', lockPath, err);
      const holder = readJson<O>(pidFile);
      if (holder && typeof holder.pid === 'number' && holder.pid !== process.pid && !sameProcessAlive(holder.pid, holder.start_ticks)) {
        // The recorded holder is dead: its lock is ours to break.
        try {
          fs.rmdirSync(lockPath);
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') throw storageError('break the stale lock', lockPath, e);
        }
        fs.rmSync(pidFile, { force: true });
        continue;
      }
      return { ok: false, owner: holder };
    }
  }
  return { ok: false, owner: readJson<O>(pidFile) };
}
