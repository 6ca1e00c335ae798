// Task ids: `task-YYYYMMDD-HHMMSS` (UTC), with a numeric suffix (`-2`, `-3`...) when two
// tasks start in the same second. They sort by time, then by suffix.

/** The id of a task created at `now`, before any suffix. */
export function taskIdBase(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `task-${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}` +
    `-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`
  );
}

/** A string that sorts like compareIds: the suffix zero-padded (task-...-2 before task-...-10). */
export function idSortKey(id: string): string {
  const [base, suffix = '1'] = splitId(id);
  return `${base}-${suffix.padStart(6, '0')}`;
}

/** Ids sort by time, then by their numeric suffix. */
export function compareIds(a: string, b: string): number {
  const [ab, as = '1'] = splitId(a);
  const [bb, bs = '1'] = splitId(b);
  return ab < bb ? -1 : ab > bb ? 1 : Number(as) - Number(bs);
}

function splitId(id: string): [string, string | undefined] {
  const m = /^(task-\d{8}-\d{6})(?:-(\d+))?$/.exec(id);
  return m ? [m[1] ?? id, m[2]] : [id, undefined];
}
