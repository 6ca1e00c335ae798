// Points in time as users write them on a command line (`--since 7d`, `--until 2026-11-01`):
// a duration back from now (s, m, h, d, w), a date (midnight UTC), or an ISO 8601 instant.
// The result is an ISO 8601 UTC string, comparable with created_at as text.
import { AtlasError } from '../errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseWhen(option: string, value: string, now: Date = new Date()): string {
  const v = value.trim();
  const dur = /^(\d{1,9})\s*(s|m|h|d|w)$/.exec(v);
  if (dur) return new Date(now.getTime() - Number(dur[1]) * UNIT_MS[dur[2]!]!).toISOString();
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const t = Date.parse(`${v}T00:00:00Z`);
    if (Number.isFinite(t) && new Date(t).toISOString().startsWith(v)) return new Date(t).toISOString();
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return new Date(t).toISOString();
  }
  throw new AtlasError('invalid_input', `${option} ${JSON.stringify(value)}: expected a duration back from now (30m, 12h, 7d, 2w), a date (2026-11-01, midnight UTC) or an ISO 8601 time (2026-11-01T09:30:00Z)`, {
    details: { option, value },
  });
}
