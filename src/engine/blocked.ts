// Why a task on a shared store waits with no daemon able to run it (DESIGN §9), for `show`.
//
// Who can run a task is decided by its workspace: a --repo workspace runs on any daemon (each
// makes its own clone), a --path workspace only on the daemon that made it and on daemons whose
// config.yaml lists it under `workspaces:`. Every daemon records in its heartbeat row which
// workspaces it can run; a daemon is live while it has not stopped and its heartbeat is younger
// than a lease TTL. A task waiting to be claimed (pending, or running with no live lease and no
// parked wait) whose workspace no live daemon lists is blocked, and the reason names who could
// run it and what to do.
import type { TaskRecord, WorkspaceRecord } from '../store/records.js';
import { claimState, listDaemons, type DaemonRow } from '../store/pg/cluster-sql.js';
import { PgStore } from '../store/pg/pg-store.js';
import type { EngineCore } from './engine-core.js';
import { runsAnywhere } from './workspaces.js';

/** Why no live daemon can run `task`, or undefined when one can (or it is not waiting for one). */
export async function blockedReason(engine: EngineCore, task: TaskRecord): Promise<string | undefined> {
  const store = engine.store;
  if (!(store instanceof PgStore)) return undefined;
  if (task.status !== 'pending' && task.status !== 'running') return undefined;
  if (task.status === 'pending' && task.waiting_on?.length) return undefined;
  const state = await claimState(store.db, task.id);
  if (!state || state.leased || state.parked) return undefined;
  const ws = task.workspace;
  if (state.workspace === null) return `workspace ${ws} no longer exists, so no daemon can run this task; create workspace ${ws} again, or cancel the task`;
  let record: WorkspaceRecord | undefined;
  try {
    record = JSON.parse(state.workspace) as WorkspaceRecord;
  } catch {
    record = undefined;
  }
  const daemons = await listDaemons(store.db);
  const live = (d: DaemonRow) => !d.stopped && d.heartbeat_age_ms < store.db.ttlMs;
  const anywhere = record !== undefined && runsAnywhere(record);
  const able = daemons.filter((d) => anywhere || d.workspaces.includes(ws) || d.id === state.created_by);
  if (able.some(live)) return undefined;
  const down = able.map((d) => `${d.id} on ${d.host} ${d.stopped ? 'stopped' : 'silent'} (last heartbeat ${ago(d.heartbeat_age_ms)} ago)`);
  if (anywhere) return `no live daemon: every daemon of the database is down${down.length ? ` (${down.join('; ')})` : ''}; start one`;
  const who = state.created_by ? `daemon ${state.created_by}, which made it,` : 'the daemon that made it';
  const where = record ? ` (its directory there: ${record.path})` : '';
  return (
    `no live daemon can run workspace ${ws}: a --path workspace runs only on ${who} and on daemons that list it under workspaces: in config.yaml; ` +
    (down.length ? `those are down: ${down.join('; ')}. ` : 'none is registered. ') +
    `Start ${state.created_by ?? 'that daemon'} again, or list ${ws} under workspaces: in a live daemon's config.yaml where the same directory exists${where}`
  );
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
