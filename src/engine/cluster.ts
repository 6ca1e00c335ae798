// Running as one of several daemons on a shared PostgreSQL store (DESIGN §9).
//
//   start: take this daemon's session lock (a session-level advisory lock on its id, on a
//     connection of its own: peers that can take it know this daemon's process is gone);
//     kill the process trees of tasks it ran before and no longer runs (a restart after a
//     crash), then give up what it still owned, so that claiming starts clean.
//   every poll (or at once when nudged): find owners whose session lock is free (dead),
//     claim runnable tasks up to the free slots, hand them to the local scheduler.
//   every TTL/3: one heartbeat statement renews every lease; a task missing from its answer
//     was taken by another daemon: its step is stopped (tree killed), nothing more written.
//   no heartbeat for a whole TTL, or the session lock's connection broken: every step of
//     this daemon is stopped, since its leases may be gone.
import type { Logger } from 'pino';
import type pg from 'pg';
import os from 'node:os';
import type { Config } from '../config/config.js';
import type { StepState, TaskRecord } from '../store/records.js';
import { clientFor } from '../store/pg/connect.js';
import { claimTasks, daemonLockKey, deadOwners, heartbeat, lastRunHere, leaseHolders, markStopped, registerDaemon, releaseOwned, type Claimed } from '../store/pg/cluster-sql.js';
import type { PgStore } from '../store/pg/pg-store.js';
import { decodeTask } from '../store/task-codec.js';
import { VERSION } from '../version.js';
import { killLeftover } from './reattach.js';

export interface ClusterHooks {
  /** Slots free for new tasks on this daemon. */
  freeSlots(): number;
  /** Runs a claimed task (its lease is held). */
  run(claimed: Claimed): void;
  /** Stops a task's step at once: its lease is gone. */
  leaseLost(id: string, reason: string): void;
  /** Ids of the tasks this daemon runs now. */
  running(): string[];
}

export interface ClusterOptions {
  store: PgStore;
  config: Config;
  log: Logger | undefined;
  hooks: ClusterHooks;
  /** How often to look for work when not nudged (ms). */
  pollMs?: number;
}

export type ClusterState = 'created' | 'running' | 'stopped';

export class Cluster {
  private state: ClusterState = 'created';
  private lockClient: pg.Client | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private lastBeatOk = performance.now();
  private claiming: Promise<void> | undefined;
  private again = false;
  private readonly pollMs: number;
  private reconnecting = false;
  private claimsPaused = false;
  private readonly heldOff = new Map<string, number>();
  takeovers = 0;
  leasesLost = 0;

  constructor(private readonly o: ClusterOptions) {
    this.pollMs = o.pollMs ?? 500;
  }

  get daemonId(): string {
    return this.o.store.db.daemonId;
  }

  /** Workspaces this daemon can run: --repo ones (it makes its own copy), those it made, those
   *  its config lists; less those whose copy it failed to make a moment ago. */
  async runnableWorkspaces(): Promise<string[]> {
    const listed = this.o.config.workspaces;
    const now = performance.now();
    for (const [ws, until] of this.heldOff) if (until <= now) this.heldOff.delete(ws);
    return (await this.o.store.workspaces.reach()).filter((w) => (w.anywhere || w.created_by === this.daemonId || w.name in listed) && !this.heldOff.has(w.name)).map((w) => w.name);
  }

  /** Claims no task of workspace `ws` for `ms` (its copy could not be made here: another daemon may). */
  holdOff(ws: string, ms: number): void {
    this.heldOff.set(ws, performance.now() + ms);
  }

  async start(): Promise<{ killed_groups: number; released: number }> {
    const { store } = this.o;
    await this.takeSessionLock();
    await registerDaemon(store.db, { home: store.paths.root, version: VERSION, workspaces: await this.runnableWorkspaces() });
    // Before anything else: trees of tasks this daemon ran and no longer owns (or will claim
    // again from scratch) die, so no step of ours runs twice.
    let killed = 0;
    for (const row of await lastRunHere(store.db)) {
      let task: TaskRecord;
      try {
        task = decodeTask(row.data, row.id);
      } catch {
        continue;
      }
      const step: StepState | undefined = task.steps[task.current_step];
      if (step?.status === 'running' && step.process && (await killLeftover(step, this.o.config.kill_grace_ms))) killed++;
    }
    const released = await releaseOwned(store.db);
    this.state = 'running';
    this.lastBeatOk = performance.now();
    this.beatTimer = setInterval(() => void this.beat(), Math.max(200, Math.floor(store.db.ttlMs / 3)));
    this.pollTimer = setInterval(() => this.nudge(), this.pollMs);
    this.nudge();
    return { killed_groups: killed, released };
  }

  /** Stops taking new tasks (the daemon drains); leases are still renewed. */
  pauseClaims(): void {
    this.claimsPaused = true;
  }

  /** Looks for work now (a task was created, resumed, or a slot freed). */
  nudge(): void {
    if (this.state !== 'running' || this.claimsPaused) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = this.claim()
      .catch((err: unknown) => this.o.log?.warn({ err: (err as Error).message }, 'claiming tasks failed; trying again'))
      .finally(() => {
        this.claiming = undefined;
        if (this.again) {
          this.again = false;
          this.nudge();
        }
      });
  }

  private async claim(): Promise<void> {
    const free = this.o.hooks.freeSlots();
    if (free <= 0 || !this.lockClient) return;
    const { store } = this.o;
    const holders = await leaseHolders(store.db);
    const dead = holders.length ? await deadOwners(this.lockClient, store.target.schema, holders) : [];
    // cluster_max_concurrent_tasks: counted over every daemon's live leases, under the claim lock.
    const claimed = await claimTasks(store.db, { limit: free, workspaces: await this.runnableWorkspaces(), dead, globalLimit: this.o.config.cluster_max_concurrent_tasks });
    for (const c of claimed) {
      store.tasks.adoptLease(c.id, c.epoch);
      if (c.prev_owner && c.prev_owner !== this.daemonId) {
        this.takeovers++;
        this.o.log?.info({ task: c.id, from: c.prev_owner, epoch: c.epoch }, `took task ${c.id} over from daemon ${c.prev_owner}`);
      }
      // A tree left on this machine by another daemon of this machine dies before the step re-runs.
      if (c.prev_owner && c.prev_owner !== this.daemonId && c.prev_host === os.hostname()) {
        try {
          const t = await store.tasks.getTask(c.id);
          const step = t.steps[t.current_step];
          if (step?.status === 'running' && step.process) await killLeftover(step, this.o.config.kill_grace_ms);
        } catch {
          // the runner reads it again
        }
      }
      this.o.hooks.run(c);
    }
  }

  private async beat(): Promise<void> {
    if (this.state !== 'running') return;
    const { store } = this.o;
    // A whole TTL without a heartbeat (a partition, or this process was stopped): our leases
    // may be someone else's now; stop every step before anything else.
    if (performance.now() - this.lastBeatOk > store.db.ttlMs) this.loseAll(`no heartbeat for more than ${store.db.ttlMs} ms`);
    let owned: Map<string, number>;
    try {
      owned = await heartbeat(store.db, await this.runnableWorkspaces());
    } catch (err) {
      this.o.log?.warn({ err: (err as Error).message }, 'heartbeat failed; retrying');
      if (performance.now() - this.lastBeatOk > store.db.ttlMs) this.loseAll(`the database was unreachable for more than ${store.db.ttlMs} ms`);
      return;
    }
    this.lastBeatOk = performance.now();
    for (const [id, epoch] of [...store.db.leases]) {
      if (owned.get(id) !== epoch) this.lose(id, 'another daemon claimed it');
    }
  }

  private lose(id: string, reason: string): void {
    this.leasesLost++;
    this.o.log?.warn({ task: id, reason }, `lost the lease on task ${id}: ${reason}; stopping its step`);
    this.o.store.db.leaseLost(id, reason);
  }

  private loseAll(reason: string): void {
    for (const id of [...this.o.store.db.leases.keys()]) this.lose(id, reason);
  }

  /** Takes this daemon's session lock on a connection of its own, waiting for a previous holder. */
  private async takeSessionLock(): Promise<void> {
    const { store } = this.o;
    const client = clientFor(store.target, { application: `atlas ${this.daemonId} (session lock)` });
    await client.connect();
    client.on('error', () => this.lockBroken());
    client.on('end', () => this.lockBroken());
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [daemonLockKey(store.target.schema, this.daemonId)]);
    this.lockClient = client;
  }

  /** The session lock's connection is gone: peers may take our tasks at once, so stop our steps. */
  private lockBroken(): void {
    if (this.state !== 'running' || this.reconnecting) return;
    this.reconnecting = true;
    this.lockClient = undefined;
    this.loseAll('the connection holding the daemon lock broke');
    const retry = (delay: number) => {
      if (this.state !== 'running') return;
      setTimeout(() => {
        this.takeSessionLock().then(
          () => {
            this.reconnecting = false;
          },
          () => retry(Math.min(delay * 2, 5000)),
        );
      }, delay).unref();
    };
    retry(250);
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.beatTimer) clearInterval(this.beatTimer);
    await this.claiming;
    await markStopped(this.o.store.db).catch(() => undefined);
    const c = this.lockClient;
    this.lockClient = undefined;
    await c?.end().catch(() => undefined);
  }
}
