// Connecting to PostgreSQL: one pool per store, the atlas schema on every connection's
// search_path, a bounded connect time, and messages that name the server but never the
// password.
import type pg from 'pg';
import { AtlasError } from '../../errors.js';
import { lazyPackage } from '../../util/lazy-package.js';

/** node-postgres, loaded by the first connection (a daemon on the filesystem store never loads it). */
const pgLib = lazyPackage<typeof pg>('pg');

export interface PgTarget {
  url: string;
  schema: string;
}

/** Quotes an SQL identifier (a schema name from config). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `user@host:port/db` for messages: never the password. */
export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${u.username ? `${decodeURIComponent(u.username)}@` : ''}${host}${u.port ? `:${u.port}` : ''}${u.pathname || ''}`;
  } catch {
    return '(an unparsable URL)';
  }
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** `daemonId`: set as `atlas.daemon` on every connection (it marks the events the daemon writes). */
export function poolFor(target: PgTarget, options: { max?: number; connectTimeoutMs?: number; application?: string; daemonId?: string } = {}): pg.Pool {
  const pool = new (pgLib().Pool)({
    connectionString: target.url,
    max: options.max ?? 8,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    application_name: options.application ?? 'atlas',
    options: `-c search_path=${quoteIdent(target.schema)}${options.daemonId && /^[A-Za-z0-9_.-]+$/.test(options.daemonId) ? ` -c atlas.daemon=${options.daemonId}` : ''}`,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** A client on its own connection (not pooled), for session-level locks. */
export function clientFor(target: PgTarget, options: { connectTimeoutMs?: number; application?: string } = {}): pg.Client {
  return new (pgLib().Client)({
    connectionString: target.url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    application_name: options.application ?? 'atlas',
    options: `-c search_path=${quoteIdent(target.schema)}`,
  });
}

/** Turns a driver error into a storage error that names the server (never the password). */
export function pgError(what: string, target: PgTarget, err: unknown): AtlasError {
  const msg = (err as Error)?.message ?? String(err);
  const safe = msg.split(target.url).join(describeTarget(target.url));
  return new AtlasError('storage', `PostgreSQL at ${describeTarget(target.url)}: could not ${what}: ${safe}`, { cause: err, retryable: true, details: { server: describeTarget(target.url) } });
}
