// What the engine does on start, before it runs anything: with the filesystem store it
// recovers every task a previous process left unfinished (recovery.ts) and sweeps idle
// tasks' temp files in the background; with a shared (PostgreSQL) store it joins the cluster.
import type { IndexScan } from '../store/task-index.js';
import type { PgStore } from '../store/pg/pg-store.js';
import { idSortKey } from '../store/task-ids.js';
import { Cluster } from './cluster.js';
import type { EngineCore } from './engine-core.js';
import { recoverTasks, type RecoveryReport } from './recovery.js';
import { stopLost } from './task-runs.js';

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
  const cluster = new Cluster({
    store,
    config: engine.config,
    log: engine.log,
    hooks: {
      freeSlots: () => engine.config.max_concurrent_tasks - engine.active.size - engine.scheduler.pending,
      run: (c) => engine.scheduler.enqueue({ id: c.id, workspace: c.workspace, priority: c.priority, order: `${c.created_at}|${idSortKey(c.id)}` }),
      leaseLost: (id) => stopLost(engine, id),
      running: () => [...engine.active.keys()],
    },
  });
  store.db.onLeaseLost((l) => stopLost(engine, l.id));
  engine.cluster = cluster;
  const { killed_groups } = await cluster.start();
  return { tasks_seen: seen, requeued: [], rerun: [], paused: [], reattached: [], killed_groups, swept_temp_files: 0, unreadable: [], repaired: [], duration_ms: Math.round(performance.now() - started) };
}

async function sweepIdle(engine: EngineCore, tasks: Array<{ id: string; workspace: string }>): Promise<void> {
  let swept = 0;
  for (const t of tasks) {
    if (engine.state !== 'running') break;
    swept += (await engine.store.tasks.sweep(t.workspace, t.id).catch(() => [])).length;
  }
  if (swept) engine.log?.info({ swept_temp_files: swept }, `swept ${swept} temp file(s) left by dead writers in idle tasks`);
}
