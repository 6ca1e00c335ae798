// The statements that let several daemons share one database: registering a daemon,
// its heartbeat (one statement renews every lease it holds), finding owners whose session
// is gone, and claiming runnable tasks.
//
// Claiming: one transaction under a cluster-wide advisory lock (so two daemons never both
// see a workspace as free), candidates picked with FOR UPDATE SKIP LOCKED in priority then
// creation order, at most one per workspace, none in a workspace whose task another live
// daemon runs, only in workspaces this daemon can run, none whose durable wait let go of it
// until a deadline still ahead (wake_at). Every claim grows the lease epoch.
// Time is the database's clock (now()) throughout.
import os from 'node:os';
import type pg from 'pg';
import type { Db } from './db.js';

export interface DaemonRow {
  id: string;
  host: string;
  pid: number;
  home: string;
  version: string;
  started_at: string;
  heartbeat_age_ms: number;
  stopped: boolean;
  workspaces: string[];
  running: number;
}

export interface Claimed {
  id: string;
  workspace: string;
  epoch: number;
  priority: number;
  created_at: string;
  /** The daemon that ran it before, and its host (its process tree may be there). */
  prev_owner: string | null;
  prev_host: string | null;
}

/** The key of a daemon's session-level advisory lock: held while its database session lives. */
export function daemonLockKey(schema: string, id: string): string {
  return `atlas-daemon:${schema}:${id}`;
}

export async function registerDaemon(db: Db, info: { home: string; version: string; workspaces: string[] }): Promise<void> {
  await db.query(
    'register the daemon',
    `INSERT INTO daemons (id, host, pid, home, version, workspaces) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET host = $2, pid = $3, home = $4, version = $5, workspaces = $6, started_at = now(), heartbeat_at = now(), stopped_at = NULL`,
    [db.daemonId, os.hostname(), process.pid, info.home, info.version, info.workspaces],
  );
}

export async function markStopped(db: Db): Promise<void> {
  await db.query('record the daemon stopped', 'UPDATE daemons SET stopped_at = now() WHERE id = $1', [db.daemonId]);
}

/** One statement: the daemon's heartbeat and the renewal of every lease it holds. Returns what it still owns. */
export async function heartbeat(db: Db, workspaces: string[]): Promise<Map<string, number>> {
  const r = await db.query<{ id: string; lease_epoch: string }>(
    'renew leases',
    `WITH d AS (UPDATE daemons SET heartbeat_at = now(), workspaces = $3 WHERE id = $1)
     UPDATE tasks SET lease_until = now() + $2 * interval '1 millisecond' WHERE owner = $1 RETURNING id, lease_epoch`,
    [db.daemonId, db.ttlMs, workspaces],
  );
  return new Map(r.rows.map((x) => [x.id, Number(x.lease_epoch)]));
}

/** Other daemons that hold live leases. */
export async function leaseHolders(db: Db): Promise<string[]> {
  const r = await db.query<{ owner: string }>('list lease holders', 'SELECT DISTINCT owner FROM tasks WHERE owner IS NOT NULL AND owner <> $1 AND lease_until > now()', [db.daemonId]);
  return r.rows.map((x) => x.owner);
}

/** Owners whose session lock can be taken: their database session (so their process) is gone. */
export async function deadOwners(lockClient: pg.Client, schema: string, owners: string[]): Promise<string[]> {
  const dead: string[] = [];
  for (const owner of owners) {
    const key = daemonLockKey(schema, owner);
    const r = await lockClient.query<{ got: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS got', [key]);
    if (r.rows[0]?.got) {
      await lockClient.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
      dead.push(owner);
    }
  }
  return dead;
}

/** Claims up to `limit` runnable tasks for this daemon. */
export async function claimTasks(db: Db, opts: { limit: number; workspaces: string[]; dead: string[]; globalLimit: number | null }): Promise<Claimed[]> {
  if (opts.limit <= 0 || opts.workspaces.length === 0) return [];
  return db.tx('claim tasks', async (c) => {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`atlas-claim:${db.target.schema}`]);
    let limit = opts.limit;
    if (opts.globalLimit !== null) {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM tasks WHERE owner IS NOT NULL AND lease_until > now() AND NOT (owner = ANY($1))`, [opts.dead]);
      limit = Math.min(limit, opts.globalLimit - Number(r.rows[0]?.n ?? 0));
      if (limit <= 0) return [];
    }
    const free = `(t.owner IS NULL OR t.lease_until < now() OR t.owner = ANY($3))`;
    const r = await c.query<{ id: string; workspace: string; lease_epoch: string; priority: number; created_at: string; prev_owner: string | null; prev_host: string | null }>(
      `WITH cand AS (
         SELECT t.id, t.last_owner AS prev_owner FROM tasks t
         WHERE t.id IN (
           SELECT DISTINCT ON (t.workspace) t.id FROM tasks t
           WHERE t.status IN ('pending', 'running') AND ${free} AND t.workspace = ANY($2)
             AND (t.wake_at IS NULL OR t.wake_at <= now())
             AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.workspace = t.workspace AND o.id <> t.id AND o.owner IS NOT NULL
                             AND o.lease_until >= now() AND NOT (o.owner = ANY($3)))
           ORDER BY t.workspace, t.priority DESC, t.created_at, t.sort_key)
         AND ${free}
         ORDER BY t.priority DESC, t.created_at, t.sort_key
         LIMIT $4
         FOR UPDATE SKIP LOCKED)
       UPDATE tasks SET owner = $1, last_owner = $1, lease_epoch = tasks.lease_epoch + 1,
              lease_until = now() + $5 * interval '1 millisecond', change_seq = nextval('change_seq')
       FROM cand WHERE tasks.id = cand.id
       RETURNING tasks.id, tasks.workspace, tasks.lease_epoch, tasks.priority, tasks.created_at, cand.prev_owner,
                 (SELECT host FROM daemons WHERE daemons.id = cand.prev_owner) AS prev_host`,
      [db.daemonId, opts.workspaces, opts.dead, limit, db.ttlMs],
    );
    return r.rows.map((x) => ({ id: x.id, workspace: x.workspace, epoch: Number(x.lease_epoch), priority: x.priority, created_at: x.created_at, prev_owner: x.prev_owner, prev_host: x.prev_host }));
  });
}

/** Tasks this daemon ran last whose step was running: their trees may still live on this machine. */
export async function lastRunHere(db: Db): Promise<Array<{ id: string; owner: string | null; data: string }>> {
  const r = await db.query<{ id: string; owner: string | null; data: string }>('list tasks run here', `SELECT id, owner, data FROM tasks WHERE last_owner = $1 AND status = 'running'`, [db.daemonId]);
  return r.rows;
}

/** Gives up whatever this daemon owned (after a restart: it runs nothing yet). */
export async function releaseOwned(db: Db): Promise<number> {
  const r = await db.query('release leases', `UPDATE tasks SET owner = NULL, lease_until = NULL, change_seq = nextval('change_seq') WHERE owner = $1`, [db.daemonId]);
  return r.rowCount ?? 0;
}

/** What decides whether a task waits for a daemon: its lease, a parked wait, its workspace and who made it. */
export interface ClaimState {
  leased: boolean;
  parked: boolean;
  /** The workspace record (JSON text), or null when the workspace is gone. */
  workspace: string | null;
  created_by: string | null;
}

export async function claimState(db: Db, id: string): Promise<ClaimState | undefined> {
  const r = await db.query<ClaimState>(
    'read a task lease',
    `SELECT (t.owner IS NOT NULL AND t.lease_until > now()) AS leased, (t.wake_at IS NOT NULL AND t.wake_at > now()) AS parked,
            w.record AS workspace, w.created_by
     FROM tasks t LEFT JOIN workspaces w ON w.name = t.workspace WHERE t.id = $1`,
    [id],
  );
  return r.rows[0];
}

export async function listDaemons(db: Db): Promise<DaemonRow[]> {
  const r = await db.query<{ id: string; host: string; pid: number; home: string; version: string; started_at: Date; age: string; stopped: boolean; workspaces: string[]; running: string }>(
    'list daemons',
    `SELECT d.id, d.host, d.pid, d.home, d.version, d.started_at, (extract(epoch FROM now() - d.heartbeat_at) * 1000)::bigint AS age,
            d.stopped_at IS NOT NULL AS stopped, d.workspaces,
            (SELECT count(*) FROM tasks t WHERE t.owner = d.id AND t.lease_until > now()) AS running
     FROM daemons d ORDER BY d.id`,
  );
  return r.rows.map((x) => ({
    id: x.id,
    host: x.host,
    pid: x.pid,
    home: x.home,
    version: x.version,
    started_at: new Date(x.started_at).toISOString(),
    heartbeat_age_ms: Number(x.age),
    stopped: x.stopped,
    workspaces: x.workspaces,
    running: Number(x.running),
  }));
}
