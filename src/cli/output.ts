// Printing: aligned tables, colour only on a TTY and never with NO_COLOR, JSON on demand,
// and the mapping from errors to exit codes (DESIGN §7).
import { AtlasError } from '../errors.js';
import { ClientError } from '../client/client.js';

/** 6: `--wait`/`--follow` stopped at a human step (the task waits for approve/reject), not a
 *  failure; 7: atlas itself failed (storage: a full disk, permissions; an internal error). */
export const EXIT = { OK: 0, TASK_FAILED: 1, USAGE: 2, UNREACHABLE: 3, NOT_FOUND: 4, NOT_ALLOWED: 5, AWAITING_APPROVAL: 6, INTERNAL: 7 } as const;

/** The exit code for a task that `--wait`/`--follow` saw settle. */
export function exitForTask(status: string): number {
  return status === 'completed' ? EXIT.OK : status === 'awaiting_approval' ? EXIT.AWAITING_APPROVAL : EXIT.TASK_FAILED;
}

const useColor = (stream: NodeJS.WriteStream) => Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env['TERM'] !== 'dumb';

function paint(code: string, stream: NodeJS.WriteStream = process.stdout) {
  return (s: string) => (useColor(stream) ? `\x1b[${code}m${s}\x1b[0m` : s);
}
export const c = {
  bold: paint('1'),
  dim: paint('2'),
  red: paint('31'),
  green: paint('32'),
  yellow: paint('33'),
  cyan: paint('36'),
  errRed: paint('31', process.stderr),
  errDim: paint('2', process.stderr),
  errYellow: paint('33', process.stderr),
};

export function statusColor(status: string): string {
  switch (status) {
    case 'completed':
      return c.green(status);
    case 'running':
    case 'pending':
      return c.cyan(status);
    case 'awaiting_approval':
    case 'interrupted':
      return c.yellow(status);
    case 'abandoned':
    case 'rejected':
      return c.dim(status);
    default:
      return c.red(status);
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (s: string) => s.replace(ANSI, '').length;

/** An aligned table; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visible(cell)))).join('  ');
  return [c.bold(line(headers)), ...rows.map(line)].join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function info(message: string): void {
  process.stderr.write(message + '\n');
}

export function warn(message: string): void {
  process.stderr.write(c.errYellow(`atlas: ${message}`) + '\n');
}

export function exitCodeFor(err: unknown): number {
  const code = err instanceof ClientError || err instanceof AtlasError ? err.code : undefined;
  switch (code) {
    case 'daemon_unreachable':
      return EXIT.UNREACHABLE;
    case 'not_found':
      return EXIT.NOT_FOUND;
    case 'not_allowed':
    case 'invalid_transition':
    case 'conflict':
    case 'locked':
    case 'lease_lost':
      return EXIT.NOT_ALLOWED;
    case 'invalid_name':
    case 'invalid_input':
    case 'template_invalid':
    case 'config_invalid':
    case 'invalid_params':
    case 'already_exists':
      return EXIT.USAGE;
    default:
      // storage, corrupt, unsupported_schema, internal, protocol errors, and anything unexpected:
      // atlas failed, not the task (1 means "the task ended unsuccessfully").
      return EXIT.INTERNAL;
  }
}

export function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(c.errRed(`atlas: ${message}`) + '\n');
  process.exit(exitCodeFor(err));
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  if (m < 60) return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

export function ago(iso: string | null | undefined): string {
  if (!iso) return '-';
  const ms = Date.now() - Date.parse(iso);
  if (ms < 0) return 'just now';
  return `${duration(ms)} ago`;
}
