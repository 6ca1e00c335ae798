// Named fault points for crash tests (STYLE 9): `ATLAS_FAULTS=name[,name...]` in the daemon's
// environment makes the process kill itself with SIGKILL when it reaches one of those points,
// so a test can crash it exactly between two writes. Unset, a fault point costs one Set lookup.
const armed = new Set((process.env['ATLAS_FAULTS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** Dies at once (SIGKILL, no cleanup) when `name` is armed. */
export function faultPoint(name: string): void {
  if (armed.size && armed.has(name)) process.kill(process.pid, 'SIGKILL');
}
