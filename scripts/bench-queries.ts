// Query benchmarks (DESIGN §13, issue 13): `atlas list` filters over 10,000 and 100,000 tasks
// in the in-memory index, each timed over the socket and compared with a `daemon.status` call
// on the same connection (the cost of a round trip that does no query). Target: a filtered
// list answers within 20 ms beyond a status call at 10,000 tasks, 50 ms at 100,000 (p99).
//
// Run by `npm run bench` (scripts/bench.ts), or alone:
//   node dist/scripts/bench-queries.js [--sizes 10000,100000]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AtlasClient, DAEMON_MAIN, DAEMON_NODE_FLAGS } from '../src/client/client.js';
import type { ParamsIn } from '../src/protocol/methods.js';
import { HomePaths } from '../src/store/paths.js';
import { PgStore } from '../src/store/pg/pg-store.js';
import { generateHistory, writeHistory } from './history.js';

export interface QueryFigures {
  tasks: number;
  populate_s: number;
  ready_ms: number;
  status: { p50_ms: number; p99_ms: number };
  queries: Record<string, { p50_ms: number; p99_ms: number; beyond_status_p99_ms: number; matched: number }>;
  worst_beyond_status_p99_ms: number;
  target_ms: number;
  met: boolean;
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function time(n: number, call: () => Promise<unknown>): Promise<{ p50_ms: number; p99_ms: number }> {
  for (let i = 0; i < 5; i++) await call();
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  return { p50_ms: r3(pct(lat, 50)), p99_ms: r3(pct(lat, 99)) };
}

/** With `store`, the history goes into that PostgreSQL database (queries answered in SQL). */
export async function queryBench(n: number, scratch: string, store?: { url: string; schema: string }): Promise<QueryFigures> {
  const home = fs.mkdtempSync(path.join(scratch, `queries-${n}-`));
  const t0 = performance.now();
  const history = generateHistory({ n, newest: new Date(Date.now() - 60_000), spacingMs: 60_000, workspaces: 10, seed: 11 });
  if (!store) writeHistory(home, history);
  else {
    fs.writeFileSync(path.join(home, 'config.yaml'), `store: ${store.url}\nstore_schema: ${store.schema}\n`, { mode: 0o600 });
    const pg = new PgStore({ target: store, paths: new HomePaths(home), daemonId: 'bench-history' });
    await pg.init();
    try {
      for (let i = 0; i < history.length; i += 1000) await pg.tasks.createTasks(history.slice(i, i + 1000).map((task) => ({ task })));
    } finally {
      await pg.close();
    }
  }
  const populateS = Math.round((performance.now() - t0) / 100) / 10;
  const started = performance.now();
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, '--home', home, '--quiet'], { stdio: 'ignore', detached: true });
  let client: AtlasClient | undefined;
  try {
    for (;;) {
      try {
        client = await AtlasClient.connect(home, { timeoutMs: 1000 });
        await client.call('daemon.ping');
        break;
      } catch {
        client?.close();
        client = undefined;
        if (child.exitCode !== null) throw new Error('the daemon exited during start');
        if (performance.now() - started > 600_000) throw new Error('the daemon did not answer within 10 minutes');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const readyMs = Math.round(performance.now() - started);
    const c = client;
    const status = await time(200, () => c.call('daemon.status'));
    const first = await c.call('task.query', { limit: 50 });
    const shapes: Record<string, ParamsIn<'task.query'>> = {
      'status failed (50, with total)': { status: ['failed'], limit: 50 },
      'two statuses + label (50, with total)': { status: ['failed', 'ci_timeout'], labels: { team: 'infra' }, limit: 50 },
      'since 7d + status (50, with total)': { since: '7d', status: ['completed'], limit: 50 },
      'text in inputs/errors (50, with total)': { text: 'timed out', limit: 50 },
      'everything combined (50, with total)': { status: ['failed', 'ci_timeout'], labels: { team: 'data' }, since: '30d', text: 'timed out', template: 'demo', limit: 50 },
      'second page by cursor (50, with total)': { ...(first.next_cursor ? { cursor: first.next_cursor } : {}), limit: 50 },
    };
    const queries: QueryFigures['queries'] = {};
    for (const [name, q] of Object.entries(shapes)) {
      const res = await c.call('task.query', q);
      const t = await time(n >= 100_000 ? 60 : 150, () => c.call('task.query', q));
      queries[name] = { ...t, beyond_status_p99_ms: r3(t.p99_ms - status.p99_ms), matched: res.total };
    }
    const worst = Math.max(...Object.values(queries).map((q) => q.beyond_status_p99_ms));
    const target = n >= 100_000 ? 50 : 20;
    return { tasks: n, populate_s: populateS, ready_ms: readyMs, status, queries, worst_beyond_status_p99_ms: r3(worst), target_ms: target, met: worst <= target };
  } finally {
    client?.close();
    child.kill('SIGKILL');
    await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    fs.rmSync(home, { recursive: true, force: true });
  }
}

export function printQueryFigures(f: QueryFigures, line: (label: string, value: string, target?: string, verdict?: string) => void): void {
  console.log(`\nqueries over ${f.tasks.toLocaleString('en-US')} tasks (written in ${f.populate_s} s; daemon ready in ${f.ready_ms} ms)`);
  line('  daemon.status (the baseline), p50 / p99', `${f.status.p50_ms} / ${f.status.p99_ms} ms`);
  for (const [name, q] of Object.entries(f.queries)) {
    line(`  ${name}`, `${q.p50_ms} / ${q.p99_ms} ms (+${q.beyond_status_p99_ms})`, `<= +${f.target_ms} ms p99`, q.beyond_status_p99_ms <= f.target_ms ? 'ok' : 'MISSED');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const argv = process.argv.slice(2);
  const sizes = argv.includes('--sizes') ? argv[argv.indexOf('--sizes') + 1]!.split(',').map(Number) : [10_000, 100_000];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-q-'));
  try {
    for (const n of sizes) {
      const f = await queryBench(n, scratch);
      printQueryFigures(f, (l, v, t = '', d = '') => console.log(`${l.padEnd(46)} ${v.padEnd(26)} ${t.padEnd(16)} ${d}`));
      console.log(JSON.stringify(f));
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
