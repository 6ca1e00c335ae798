// One daemon per home: a proper-lockfile lock on daemon.lock, with the holder's pid and
// process start time in daemon.pid. proper-lockfile alone would keep a kill -9'd daemon's
// lock for `stale` ms; the pid file lets the next daemon see at once that the holder is dead
// (pid gone, or reused by another process) and break the lock. Only the lock holder
// touches the socket and the pid file.
//
// A daemon killed between taking the lock and writing daemon.pid would leave a lock with no
// holder on record; so every starter first writes a claim (daemon.lock.claim-<pid>) and
// removes it only after the lock is gone. A lock with no live holder and no live claim is
// broken at once.
import fs from 'node:fs';
import path from 'node:path';
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
  const claim = `${lockPath}.claim-${process.pid}`;
  fs.writeFileSync(claim, JSON.stringify(owner), { mode: 0o600 });
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
      fs.chmodSync(lockPath, 0o700); // proper-lockfile makes it with the umask's mode (0755)
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
            fs.rmSync(claim, { force: true });
          },
        },
      };
    } catch (err) {
      if (errnoCode(err) !== 'ELOCKED') {
        fs.rmSync(claim, { force: true });
        throw storageError('lock', lockPath, err);
      }
      const holder = readJson<O>(pidFile);
      // Our own pid is no proof of life: a dead predecessor may have had it (PID 1 in a
      // container); the start time tells them apart.
      const holderDead = holder ? typeof holder.pid === 'number' && !sameProcessAlive(holder.pid, holder.start_ticks) : true;
      if (holderDead && !otherLiveClaim(lockPath)) {
        // The recorded holder is dead: its lock is ours to break.
        try {
          fs.rmdirSync(lockPath);
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') throw storageError('break the stale lock', lockPath, e);
        }
        fs.rmSync(pidFile, { force: true });
        removeDeadClaims(lockPath);
        continue;
      }
      fs.rmSync(claim, { force: true });
      return { ok: false, owner: holder };
    }
  }
  fs.rmSync(claim, { force: true });
  return { ok: false, owner: readJson<O>(pidFile) };
}

function claims(lockPath: string): Array<{ file: string; pid: number; start_ticks: number | null }> {
  const dir = path.dirname(lockPath);
  const prefix = `${path.basename(lockPath)}.claim-`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
  return names.map((n) => {
    const file = path.join(dir, n);
    const rec = readJson<{ start_ticks?: number | null }>(file);
    return { file, pid: Number(n.slice(prefix.length)), start_ticks: rec?.start_ticks ?? null };
  });
}

/** True when another process that is alive has claimed the lock (it may be about to hold it). */
function otherLiveClaim(lockPath: string): boolean {
  return claims(lockPath).some((c) => c.pid !== process.pid && sameProcessAlive(c.pid, c.start_ticks));
}

function removeDeadClaims(lockPath: string): void {
  for (const c of claims(lockPath)) if (c.pid !== process.pid && !sameProcessAlive(c.pid, c.start_ticks)) fs.rmSync(c.file, { force: true });
}
