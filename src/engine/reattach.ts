// Whether a step recorded as running can be picked up again after a restart instead of being
// re-run: its process still lives (same pid and start time), or it ended while no daemon ran
// and its gate left the exit status. Only steps whose whole work is their commands qualify
// (shell and ai); the others keep their re-run rule.
import type { StepState } from '../store/records.js';
import { filesAt, readStatus } from '../steps/attempt-files.js';
import { killLeftoverGroup } from '../steps/process.js';
import { pidAlive, processGroupAlive, sameProcessAlive } from '../util/proc.js';

const REATTACHABLE = new Set(['shell', 'ai']);

export function reattachable(step: StepState, taskDir: string): boolean {
  const p = step.process;
  if (!p?.run || !REATTACHABLE.has(step.type)) return false;
  if (p.start_ticks !== null && sameProcessAlive(p.pid, p.start_ticks)) return true;
  return readStatus(filesAt(taskDir, p.run).status(p.command_index ?? 0)) !== undefined;
}

/** Kills a step's leftover process group from an earlier process, if it is still ours. */
export async function killLeftover(step: StepState, graceMs: number): Promise<boolean> {
  const p = step.process;
  if (!p) return false;
  // A pid is never reused while its process group lives, so a live group whose leader is
  // gone is still ours; a live leader must also match the recorded start time.
  const ours = sameProcessAlive(p.pid, p.start_ticks) || (!pidAlive(p.pid) && processGroupAlive(p.pgid));
  if (!ours) return false;
  return killLeftoverGroup(p.pgid, graceMs);
}
