// What the engine does on start, before it runs anything: with the filesystem store it
// recovers every task a previous process left unfinished (recovery.ts) and sweeps idle
// tasks' temp files in the background; with a shared (PostgreSQL) store it joins the cluster
// (and gives each claimed task of a --repo workspace this daemon's copy of the repository).
import type { IndexScan } from '../store/task-index.js';
import type { PgStore } from '../store/pg/pg-store.js';
import { idSortKey } from '../store/task-ids.js';
import type { Claimed } from '../store/pg/cluster-sql.js';
import { Cluster } from './cluster.js';
import type { EngineCore } from './engine-core.js';
import { recoverTasks, type RecoveryReport } from './recovery.js';
import { stopLost } from './task-runs.js';
import { localCopy } from './workspace-copies.js';
import { runsAnywhere } from './workspaces.js';

const COPY_RETRY_MS = 60_000;

export async function recover(engine: EngineCore, scan: IndexScan): Promise<RecoveryReport> {
  const { report, toQueue, candidates } = await recoverTasks(
    {
      store: engine.store,
      index: engine.index,
      killGraceMs: engine.config.kill_grace_ms,
      log: engine.log,
      settled: (t, since, sinceResults) => {
        engine.events.record(t, { t: since, r: sinceResults });
        engine.logTransitions(t, since);
        engine.emitTask(t);
      },
    },
    scan,
  );
  for (const t of toQueue) engine.enqueue(t);
  // A killed writer can leave temp files in tasks recovery had no reason to read too (an
  // approve or a repair cut off mid-write): those are swept in the background, so a large
  // home does not delay the start.
  engine.sweeping = sweepIdle(engine, (engine.index.loaded?.() ?? engine.index.list({})).filter((t) => !candidates.has(t.id)));
  return report;
}

/** Joins the daemons of a shared store: takes this daemon's lock, cleans up after a crash, starts claiming. */
export async function joinCluster(engine: EngineCore, store: PgStore, seen: number): Promise<RecoveryReport> {
  const started = performance.now();
  // Claimed tasks whose --repo workspace is being copied to this daemon before they run.
  const placing = new Set<string>();
  const cluster = new Cluster({
    store,
    config: engine.config,
    log: engine.log,
    hooks: {
      freeSlots: () => engine.config.max_concurrent_tasks - engine.active.size - engine.scheduler.pending - placing.size,
      run: (c) => {
        placing.add(c.id);
        void place(engine, store, c).finally(() => placing.delete(c.id));
      },
      leaseLost: (id) => stopLost(engine, id),
      running: () => [...engine.active.keys()],
    },
  });
  store.db.onLeaseLost((l) => stopLost(engine, l.id));
  engine.cluster = cluster;
  const { killed_groups } = await cluster.start();
  return { tasks_seen: seen, requeued: [], rerun: [], paused: [], reattached: [], killed_groups, swept_temp_files: 0, unreadable: [], repaired: [], duration_ms: Math.round(performance.now() - started) };
}

/** Runs a claimed task here: a --repo workspace's task first gets this daemon's copy of the
 *  repository (workspace-copies.ts) as its working directory. A copy that cannot be made lets
 *  go of the task, and this daemon claims none of that workspace for a minute. */
async function place(engine: EngineCore, store: PgStore, c: Claimed): Promise<void> {
  try {
    const ws = await store.workspaces.get(c.workspace);
    if (runsAnywhere(ws)) {
      const dir = await localCopy(store.paths, ws);
      if ((await store.tasks.getTask(c.id)).workdir !== dir) {
        await engine.updateAndLog(c.id, (t) => {
          t.workdir = dir;
        });
      }
    }
  } catch (err) {
    engine.log?.warn({ task: c.id, workspace: c.workspace, err: (err as Error).message }, `cannot run task ${c.id} here: ${(err as Error).message}; letting another daemon take it`);
    engine.cluster?.holdOff(c.workspace, COPY_RETRY_MS);
    await store.tasks.releaseLease(c.id).catch(() => undefined);
    return;
  }
  engine.scheduler.enqueue({ id: c.id, workspace: c.workspace, priority: c.priority, order: `${c.created_at}|${idSortKey(c.id)}` });
}

async function sweepIdle(engine: EngineCore, tasks: Array<{ id: string; workspace: string }>): Promise<void> {
  let swept = 0;
  for (const t of tasks) {
    if (engine.state !== 'running') break;
    swept += (await engine.store.tasks.sweep(t.workspace, t.id).catch(() => [])).length;
  }
  if (swept) engine.log?.info({ swept_temp_files: swept }, `swept ${swept} temp file(s) left by dead writers in idle tasks`);
}
