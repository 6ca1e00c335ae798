// The PostgreSQL store in `npm run bench` (issue 11): steps per second for the same 8 tasks x
// 100 steps as the filesystem figures (no-work and shell steps, 4 in flight), and takeover
// time after kill -9 of a daemon mid-step (p50/p99 over the kill runs: from the kill to
// another daemon owning the task), and `atlas list` queries in SQL over 10,000 tasks (the same
// shapes as bench-queries.ts times on the filesystem store's in-memory index). The server: PG_URL, else the local socket or
// 127.0.0.1:5432; each run makes its own database and drops it.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { AtlasClient, DAEMON_MAIN, DAEMON_NODE_FLAGS } from '../src/client/client.js';
import { DEFAULT_CONFIG, type Config } from '../src/config/config.js';
import { Engine } from '../src/engine/engine.js';
import { queryBench, type QueryFigures } from './bench-queries.js';
import { measureThroughput } from './bench-throughput.js';

export interface PgFigures {
  skipped?: string;
  server?: string;
  wait_c4?: { steps_per_s: number; seconds: number };
  shell_c4?: { steps_per_s: number; seconds: number };
  takeover?: { kills: number; p50_ms: number; p99_ms: number; all_ms: number[] };
  /** The same with SIGSTOP (a vanished machine): taken over once the lease (STOP_TTL_S) expires. */
  takeover_stopped?: { kills: number; p50_ms: number; p99_ms: number; all_ms: number[] };
  queries?: QueryFigures;
}

const CANDIDATES = [process.env['PG_URL'], 'postgres://postgres@localhost/postgres?host=/var/run/postgresql', 'postgres://postgres@127.0.0.1:5432/postgres'].filter(
  (u): u is string => typeof u === 'string' && u.length > 0,
);

async function adminUrl(): Promise<string | undefined> {
  for (const url of CANDIDATES) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      return url;
    } catch {
      // next
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  return undefined;
}

async function admin(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function templateFile(home: string, name: string, steps: number, step: string[]): void {
  fs.mkdirSync(path.join(home, 'templates'), { recursive: true });
  const lines = [`name: ${name}`, 'steps:'];
  for (let i = 0; i < steps; i++) lines.push(`  - name: s${i}`, ...step.map((l) => `    ${l}`));
  fs.writeFileSync(path.join(home, 'templates', `${name}.yaml`), lines.join('\n') + '\n');
}

/** The lease TTL of the SIGSTOP takeover runs (the goal: takeover within TTL + 3 s). */
export const STOP_TTL_S = 2;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** 8 tasks x 100 steps through one engine on the PostgreSQL store, `concurrency` in flight. */
async function throughput(url: string, scratch: string, kind: 'wait' | 'shell', concurrency: number, tasks: number, steps: number): Promise<{ steps_per_s: number; seconds: number }> {
  const home = fs.mkdtempSync(path.join(scratch, `pg-tp-${kind}-`));
  const schema = `tp_${kind}`;
  templateFile(home, 'bench', steps, kind === 'wait' ? ['type: wait', 'duration: 0s'] : ['type: shell', 'run: "true"']);
  const config: Config = { ...DEFAULT_CONFIG, max_concurrent_tasks: concurrency, store_url: url, store_schema: schema };
  return measureThroughput(home, config, tasks, steps, 'PostgreSQL bench');
}

function startDaemon(home: string): ChildProcess {
  return spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, '--home', home, '--quiet'], { stdio: 'ignore', detached: true });
}

async function ready(home: string, child: ChildProcess): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      const c = await AtlasClient.connect(home, { timeoutMs: 1000 });
      await c.call('daemon.ping');
      c.close();
      return;
    } catch {
      if (child.exitCode !== null) throw new Error(`the daemon of ${home} exited during start`);
      if (Date.now() > until) throw new Error(`the daemon of ${home} did not start`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * kill -9 (or SIGSTOP: a machine that vanished, its database session left open) of the daemon
 * that runs a step, `kills` times; the time until another daemon owns the task. A stopped
 * daemon is taken over only once its lease expires (lease_ttl 2 s here), then continued: its
 * next write is refused and it stops that step itself.
 */
async function takeover(url: string, scratch: string, kills: number, signal: 'SIGKILL' | 'SIGSTOP' = 'SIGKILL'): Promise<{ kills: number; p50_ms: number; p99_ms: number; all_ms: number[] }> {
  const schema = signal === 'SIGKILL' ? 'takeover' : 'takeover_stop';
  const workspaces = ['w1', 'w2', 'w3', 'w4'];
  const homes = [0, 1].map((i) => {
    const home = fs.mkdtempSync(path.join(scratch, `pg-takeover-${i}-`));
    fs.writeFileSync(
      path.join(home, 'config.yaml'),
      [`store: ${url}`, `store_schema: ${schema}`, 'max_concurrent_tasks: 4', `workspaces: [${workspaces.join(', ')}]`, ...(signal === 'SIGSTOP' ? [`lease_ttl: ${STOP_TTL_S}s`] : []), 'step_defaults:', '  kill_grace: 200ms'].join('\n') + '\n',
      { mode: 0o600 },
    );
    templateFile(home, 'slow', 3, ['type: shell', 'run: sleep 1']);
    return home;
  });
  const procs = homes.map((h) => startDaemon(h));
  const db = new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${schema}` });
  db.on('error', () => undefined);
  const all: number[] = [];
  try {
    await Promise.all(homes.map((h, i) => ready(h, procs[i]!)));
    const a = await AtlasClient.connect(homes[0]!);
    try {
      for (const ws of workspaces) {
        const dir = path.join(homes[0]!, ws);
        fs.mkdirSync(dir);
        await a.call('workspace.create', { name: ws, path: dir });
      }
    } finally {
      a.close();
    }
    const ids = homes.map((h) => fs.readFileSync(path.join(h, 'daemon.id'), 'utf8').trim());
    for (let k = 0; k < kills; k++) {
      const alive = procs.findIndex((p) => p.exitCode === null && p.signalCode === null);
      const c = await AtlasClient.connect(homes[alive]!);
      try {
        for (const ws of workspaces) await c.call('task.start', { template: 'slow', workspace: ws });
      } finally {
        c.close();
      }
      // A step running (its process recorded) on some daemon, at a random point of it.
      const victim = await poll(
        'a running step',
        async () => {
          const r = await db.query<{ id: string; owner: string }>(
            `SELECT id, owner FROM tasks WHERE owner IS NOT NULL AND status = 'running' AND (data::jsonb -> 'steps' -> (data::jsonb ->> 'current_step')::int ->> 'status') = 'running' LIMIT 1`,
          );
          return r.rows[0];
        },
        60_000,
      );
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
      const i = ids.indexOf(victim.owner);
      const killedAt = performance.now();
      procs[i]!.kill(signal);
      await poll(
        'the takeover',
        async () => {
          const r = await db.query<{ owner: string | null; status: string }>('SELECT owner, status FROM tasks WHERE id = $1', [victim.id]);
          const row = r.rows[0];
          return row && ((row.owner !== null && row.owner !== victim.owner) || row.status === 'completed') ? true : undefined;
        },
        60_000,
      );
      all.push(Math.round(performance.now() - killedAt));
      if (signal === 'SIGSTOP') {
        procs[i]!.kill('SIGCONT');
        continue;
      }
      await new Promise<void>((r) => (procs[i]!.exitCode !== null || procs[i]!.signalCode !== null ? r() : procs[i]!.once('exit', () => r())));
      procs[i] = startDaemon(homes[i]!);
      await ready(homes[i]!, procs[i]!);
    }
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGCONT');
      p.kill('SIGTERM');
    }
    await Promise.all(procs.map((p) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())))));
    await db.end();
    for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
  }
  const sorted = [...all].sort((x, y) => x - y);
  return { kills, p50_ms: pct(sorted, 50), p99_ms: pct(sorted, 99), all_ms: all };
}

/** The PostgreSQL figures; `skipped` says why when no server is reachable. */
export async function pgBench(scratch: string, o: { tasks?: number; steps?: number; kills?: number; queryTasks?: number } = {}): Promise<PgFigures> {
  const server = await adminUrl();
  if (!server) return { skipped: 'no PostgreSQL server (set PG_URL, or run one on the local socket or 127.0.0.1:5432)' };
  const name = `atlas_bench_${crypto.randomBytes(4).toString('hex')}`;
  await admin(server, `CREATE DATABASE ${name}`);
  const u = new URL(server);
  u.pathname = `/${name}`;
  const url = u.toString();
  try {
    const tasks = o.tasks ?? 8;
    const steps = o.steps ?? 100;
    const out: PgFigures = { server: `${u.hostname || u.searchParams.get('host') || 'localhost'}` };
    out.wait_c4 = await throughput(url, scratch, 'wait', 4, tasks, steps);
    out.shell_c4 = await throughput(url, scratch, 'shell', 4, tasks, steps);
    out.takeover = await takeover(url, scratch, o.kills ?? 20);
    out.takeover_stopped = await takeover(url, scratch, Math.max(1, Math.round((o.kills ?? 20) / 4)), 'SIGSTOP');
    out.queries = await queryBench(o.queryTasks ?? 10_000, scratch, { url, schema: 'queries' });
    return out;
  } finally {
    await admin(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  }
}

// node dist/scripts/bench-pg.js [--tasks N] [--steps N] [--kills N] [--query-tasks N]: these figures alone (a smoke run with tiny sizes).
if (process.argv[1]?.endsWith('bench-pg.js')) {
  const arg = (k: string) => {
    const i = process.argv.indexOf(k);
    return i >= 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const scratch = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'atlas-bench-pg-'));
  try {
    console.log(JSON.stringify(await pgBench(scratch, { tasks: arg('--tasks'), steps: arg('--steps'), kills: arg('--kills'), queryTasks: arg('--query-tasks') }), null, 2));
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
