// A task's cross-process lock: task.lock in the task's directory, its holder recorded in
// task.lock.owner, claims beside it (task.lock.owner.claim-<pid>-<n>). The protocol, and when a
// dead holder's lock is broken, is claimed-lock.ts's (the home lock follows the same one).
import { acquireClaimedLock, breakDeadClaimedLock, type ClaimedLockSpec, type HeldLock, type LockOptions } from './claimed-lock.js';

export type TaskLock = HeldLock;
export type { LockOptions };

function taskLockSpec(dir: string): ClaimedLockSpec {
  const ownerPath = `${dir}/task.lock.owner`;
  return { target: dir, lockPath: `${dir}/task.lock`, ownerPath, claimsBase: ownerPath, what: `task ${dir}` };
}

/** Breaks the lock of task directory `dir` when nobody who may hold it is alive. */
export function breakDeadLock(dir: string): boolean {
  return breakDeadClaimedLock(taskLockSpec(dir));
}

export function lockTaskDir(dir: string, options: LockOptions = {}): Promise<TaskLock> {
  return acquireClaimedLock(taskLockSpec(dir), options);
}
