// Process identity: a pid alone can be reused after its process exits, so we pair it with
// the kernel's record of when the process started (Linux /proc/<pid>/stat field 22, in
// clock ticks since boot). Where /proc is missing we fall back to the pid alone.
//
// A zombie (exited, not yet reaped) counts as dead: it runs nothing and no signal reaches
// it. An orphaned step process is reaped by init, which in a container may be slow or never
// happen; counting its zombie as alive made recovery wait out the kill grace for nothing.
import fs from 'node:fs';
import { errnoCode } from '../errors.js';

/** The fields of /proc/<pid>/stat that atlas (and its tests) read. */
export interface ProcStat {
  /** R, S, D, Z (zombie), X (dead), T... */
  state: string;
  ppid: number;
  /** The process group. */
  pgrp: number;
  /** When the process started, in clock ticks since boot (field 22). */
  startTicks: number;
}

/** The one /proc/<pid>/stat parser; undefined when the process is gone or /proc is missing. */
export function procStat(pid: number | string): ProcStat | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), startTicks: Number(f[19]) };
}

export function processStartTicks(pid: number): number | null {
  const ticks = procStat(pid)?.startTicks;
  return ticks !== undefined && Number.isFinite(ticks) ? ticks : null;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  const state = procStat(pid)?.state;
  return state === 'Z' || state === 'X';
}

/** True when `pid` is alive and is the same process that was recorded with `startTicks`. */
export function sameProcessAlive(pid: number, startTicks: number | null): boolean {
  if (!pidAlive(pid)) return false;
  if (startTicks === null) return true;
  const now = processStartTicks(pid);
  return now === null || now === startTicks;
}

/**
 * True while any process of the group is alive (zombies aside). O(1) in the common cases:
 * kill(-pgid, 0) says whether the group has any member at all (ESRCH: none), and a leader
 * (pid = pgid) that lives and is no zombie answers for the group. Only a group whose leader
 * is gone or a zombie while other members remain (a step that left children behind, or a
 * group of zombies init has not reaped yet) costs a scan of /proc.
 */
export function processGroupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  const leader = procStat(pgid);
  if (leader && leader.pgrp === pgid && leader.state !== 'Z' && leader.state !== 'X') return true;
  return groupHasLiveMember(pgid);
}

/** The slow path of processGroupAlive: looks at every process for a live member of the group. */
function groupHasLiveMember(pgid: number): boolean {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return true;
  }
  let seen = false;
  for (const p of pids) {
    const f = procStat(p);
    if (!f || f.pgrp !== pgid) continue;
    seen = true;
    if (f.state !== 'Z' && f.state !== 'X') return true;
  }
  // No member found at all: /proc may not show it (another pid namespace); trust kill().
  return !seen;
}

export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

let fdLimit: number | null | undefined;

/** The soft limit on open files (RLIMIT_NOFILE) from /proc, or null where it is unknown. */
function openFileLimit(): number | null {
  if (fdLimit !== undefined) return fdLimit;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    fdLimit = m ? Number(m[1]) : null;
  } catch (err) {
    // Out of descriptors right now: ask again next time.
    if (errnoCode(err) === 'EMFILE' || errnoCode(err) === 'ENFILE') return 0;
    fdLimit = null;
  }
  return fdLimit;
}

/** Headroom above which a reading stays good for FD_READING_TTL_MS (nothing opens that many in a moment). */
const FD_PLENTY = 256;
const FD_READING_TTL_MS = 1000;
let fdReading: { headroom: number; at: number } | undefined;

/**
 * How many more files this process may open before EMFILE, or null where that is unknown.
 * Counting /proc/self/fd costs a directory read per call, so a reading that shows plenty of
 * room is reused for a second; near the limit every call counts again.
 */
export function fdHeadroom(): number | null {
  const limit = openFileLimit();
  if (limit === null) return null;
  const now = performance.now();
  if (fdReading && fdReading.headroom >= FD_PLENTY && now - fdReading.at < FD_READING_TTL_MS) return fdReading.headroom;
  try {
    const headroom = limit - fs.readdirSync('/proc/self/fd').length;
    fdReading = { headroom, at: now };
    return headroom;
  } catch (err) {
    fdReading = undefined;
    return errnoCode(err) === 'EMFILE' || errnoCode(err) === 'ENFILE' ? 0 : null;
  }
}
