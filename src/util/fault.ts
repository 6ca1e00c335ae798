// Named fault points for crash tests (STYLE 9): `ATLAS_FAULTS=name[,name...]` in the daemon's
// environment makes the process kill itself with SIGKILL when it reaches one of those points,
// so a test can crash it exactly between two writes. Unset, a fault point costs one Set lookup.
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs';

const armed = new Set((process.env['ATLAS_FAULTS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** Dies at once (SIGKILL, no cleanup) when `name` is armed. */
export function faultPoint(name: string): void {
  if (armed.size && armed.has(name)) process.kill(process.pid, 'SIGKILL');
}

/**
 * A gate (`ATLAS_FAULT_<NAME>_GATE=<file>`) holds the process at that point until the file
 * exists (at most two minutes), so a test can look at a state that is otherwise too brief to
 * catch (the daemon recovering), without depending on timing.
 */
export async function faultGate(name: string): Promise<void> {
  const file = process.env[`ATLAS_FAULT_${name}_GATE`];
  if (!file) return;
  const deadline = Date.now() + 120_000;
  while (!fs.existsSync(file) && Date.now() < deadline) await sleep(20);
}
