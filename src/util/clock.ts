// The time the schedule runner goes by. Normally the system clock; with
// `ATLAS_TEST_CLOCK=<file>` in the daemon's environment it is the ISO 8601 time written in
// that file, so a test can move time past a cron slot, or across a daemon's downtime, without
// waiting for it. A file caught half written keeps the last time read (the system clock only
// before the file was first read).
import fs from 'node:fs';

const file = process.env['ATLAS_TEST_CLOCK'];

/** True when a test drives the clock (the runner then polls instead of sleeping to the next slot). */
export const testClock = Boolean(file);

let last: number | undefined;

export function now(): Date {
  if (!file) return new Date();
  try {
    const t = Date.parse(fs.readFileSync(file, 'utf8').trim());
    if (Number.isFinite(t)) last = t;
  } catch {
    // no file yet, or caught mid-write
  }
  return new Date(last ?? Date.now());
}
