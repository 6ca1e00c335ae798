// npm run bench: atlas's speed and memory against this machine's own limits, all measured
// in the same run. Prints a table and writes the figures as JSON (.bench/latest.json).
//
//   floor       one durable atomic replace (temp write, fsync, rename, dir fsync) and one
//               spawn of /bin/sh -c true, at 1, 4 and 16 in flight
//   throughput  8 tasks x 100 steps in 8 workspaces: no-work steps (wait 0s) and shell
//               steps (true), at the default concurrency (4) and at 16; steps/s and the
//               ratio to the floor at the same number in flight
//   overhead    one task of 100 no-work steps: the engine's time per step beyond its
//               durable writes (p50/p99)
//   length      a no-work step of a 1,000-step task against one of 10-step tasks (bench-length.ts)
//   scale       100, 1,000 and 10,000 tasks in the home (a mix of statuses, real task
//               files): daemon start to ready, time until interrupted tasks run again,
//               list newest 50, list --status failed, show (p50/p99 over the socket), RSS
//   queries     list filters (status, labels, dates, text, cursor) over 10,000 and 100,000
//               tasks, beyond a status call on the same connection (bench-queries.ts)
//   history     disk used by 1,000 finished demo tasks before and after prune, prune tasks/s,
//               backup and restore time of 10,000 tasks (bench-history.ts)
//
//   cli         list, show, daemon status and start as users run them, against node -e 0 (bench-cli.ts)
//   postgres    the PostgreSQL store: the same 8 x 100 steps/s, takeover p50/p99 after kill -9 (bench-pg.ts)
//   peers       Graphile Worker and DBOS on the same workload, when PG_URL is set (bench-peers.ts)
//
// The 100,000-task sizes take minutes to write: they run with --100k (or ATLAS_BENCH_100K=1).
// Usage: node dist/scripts/bench.js [--quick] [--100k] [--sizes 1000,10000] [--out FILE]
//        node dist/scripts/bench.js --populate DIR N   (only write a home of N tasks)
//        node dist/scripts/bench.js --webhooks-only [--rounds N] [--kind wait|shell]   (only the webhook overhead)
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AtlasClient, DAEMON_MAIN, DAEMON_NODE_FLAGS } from '../src/client/client.js';
import { DEFAULT_CONFIG, type Config } from '../src/config/config.js';
import { Engine } from '../src/engine/engine.js';
import { measureThroughput } from './bench-throughput.js';
import { parseWebhooks, type WebhookEndpoint } from '../src/webhooks/webhook-config.js';
import { writeFileDurable } from '../src/store/atomic.js';
import { SCHEMA_VERSION, type TaskRecord, type TaskStatus } from '../src/store/records.js';
import { encodeTask } from '../src/store/task-codec.js';
import { printQueryFigures, queryBench, type QueryFigures } from './bench-queries.js';
import { lengthBench } from './bench-length.js';
import { cliBench } from './bench-cli.js';
import { runPeers } from './bench-peers.js';
import { STOP_TTL_S, pgBench } from './bench-pg.js';
import { historyBench } from './bench-history.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const sizesArg = argv[argv.indexOf('--sizes') + 1];
const BIG = argv.includes('--100k') || process.env['ATLAS_BENCH_100K'] === '1';
const SIZES = argv.includes('--sizes') && sizesArg ? sizesArg.split(',').map(Number) : quick ? [100, 1000] : BIG ? [1000, 10_000, 100_000] : [1000, 10_000];
const outArg = argv[argv.indexOf('--out') + 1];
const OUT = argv.includes('--out') && outArg ? outArg : path.resolve('.bench/latest.json');
const FLOOR_MS = quick ? 600 : 1500;

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-'));
const results: Record<string, unknown> = { machine: machine(), started_at: new Date().toISOString() };

function machine() {
  const cpus = os.cpus();
  return { cpus: cpus.length, cpu_model: cpus[0]?.model ?? 'unknown', memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}`, filesystem_tmp: fsType(os.tmpdir()) };
}

function fsType(dir: string): string {
  const r = spawnSync('df', ['-T', dir], { encoding: 'utf8' });
  return r.stdout.split('\n')[1]?.split(/\s+/)[1] ?? 'unknown';
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const sortNum = (a: number[]) => [...a].sort((x, y) => x - y);
const r1 = (n: number) => Math.round(n * 10) / 10;
const r3 = (n: number) => Math.round(n * 1000) / 1000;

// ---- floors -------------------------------------------------------------------------

async function floorCheckpoint(inFlight: number): Promise<{ ops_per_s: number; p50_ms: number }> {
  const dir = fs.mkdtempSync(path.join(scratch, 'floor-'));
  const payload = JSON.stringify({ x: 'y'.repeat(3000) });
  const lat: number[] = [];
  let ops = 0;
  const end = performance.now() + FLOOR_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, i) => {
      const file = path.join(dir, `f${i}.json`);
      while (performance.now() < end) {
        const t = performance.now();
        await writeFileDurable(file, payload);
        lat.push(performance.now() - t);
        ops++;
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  fs.rmSync(dir, { recursive: true, force: true });
  return { ops_per_s: r1(ops / secs), p50_ms: r3(pct(sortNum(lat), 50)) };
}

async function floorSpawn(inFlight: number): Promise<{ ops_per_s: number; p50_ms: number }> {
  const lat: number[] = [];
  let ops = 0;
  const end = performance.now() + FLOOR_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await new Promise<void>((resolve, reject) => {
          const c = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
          c.once('error', reject);
          c.once('close', () => resolve());
        });
        lat.push(performance.now() - t);
        ops++;
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  return { ops_per_s: r1(ops / secs), p50_ms: r3(pct(sortNum(lat), 50)) };
}

// ---- webhook overhead: the same throughput with one endpoint (all events) and without ----

/** A receiver in its own process (so it takes no time from the engine's thread): answers 200 to everything. */
async function startReceiver(): Promise<{ url: string; stop: () => void }> {
  const code = "const h=require('http');let n=0;h.createServer((q,s)=>{q.resume();q.on('end',()=>{n++;s.end('ok')})}).listen(0,'127.0.0.1',function(){console.log(this.address().port)});process.on('SIGTERM',()=>{console.error(n);process.exit(0)})";
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { url: `http://127.0.0.1:${port}/hook`, stop: () => child.kill('SIGTERM') };
}

/**
 * Pairs of runs, without an endpoint then with one, interleaved so that drift on a shared machine
 * hits both alike; the figure is the median of the pairs' ratios (and the best of each side).
 * Standalone: node dist/scripts/bench.js --webhooks-only [--rounds N] [--kind wait|shell]
 */
async function webhookOverhead(rounds = 3, kinds: ReadonlyArray<'wait' | 'shell'> = ['wait', 'shell']): Promise<Record<string, unknown>> {
  const rx = await startReceiver();
  const secret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
  const hooks = parseWebhooks([{ name: 'bench', url: rx.url, secret }], 'bench');
  const out: Record<string, unknown> = {};
  try {
    for (const kind of kinds) {
      const none: number[] = [];
      const one: number[] = [];
      for (let i = 0; i < rounds; i++) {
        none.push((await throughput(kind, 4)).steps_per_s);
        one.push((await throughput(kind, 4, 8, 100, hooks)).steps_per_s);
      }
      const slower = sortNum(none.map((a, i) => (1 - one[i]! / a) * 100));
      out[kind] = { none_steps_per_s: Math.max(...none), one_webhook_steps_per_s: Math.max(...one), slower_pct: r1(slower[Math.floor(slower.length / 2)]!), pairs_slower_pct: slower.map(r1) };
    }
  } finally {
    rx.stop();
  }
  return out;
}

// ---- throughput and overhead ----------------------------------------------------------

function writeTemplate(home: string, name: string, steps: number, kind: 'wait' | 'shell'): void {
  fs.mkdirSync(path.join(home, 'templates'), { recursive: true });
  const lines = [`name: ${name}`, 'steps:'];
  for (let i = 0; i < steps; i++) {
    lines.push(`  - name: s${i}`);
    if (kind === 'wait') lines.push('    type: wait', '    duration: 0s');
    else lines.push('    type: shell', '    run: "true"');
  }
  fs.writeFileSync(path.join(home, 'templates', `${name}.yaml`), lines.join('\n') + '\n');
}

async function throughput(kind: 'wait' | 'shell', concurrency: number, tasks = 8, steps = 100, webhooks: WebhookEndpoint[] = []): Promise<{ steps_per_s: number; seconds: number }> {
  const home = fs.mkdtempSync(path.join(scratch, `tp-${kind}-${concurrency}-`));
  writeTemplate(home, 'bench', steps, kind);
  const config: Config = { ...DEFAULT_CONFIG, max_concurrent_tasks: concurrency, webhooks };
  return measureThroughput(home, config, tasks, steps, 'bench');
}

async function overhead(steps = 100): Promise<{ per_step_p50_ms: number; per_step_p99_ms: number; io_p50_ms: number; overhead_p50_ms: number; overhead_p99_ms: number }> {
  const home = fs.mkdtempSync(path.join(scratch, 'overhead-'));
  writeTemplate(home, 'bench', steps, 'wait');
  const engine = await Engine.open({ home, config: { ...DEFAULT_CONFIG } });
  await engine.start();
  // Time the durable I/O of each step (checkpoint and log sync) to separate it from the engine's own work.
  const tasks = engine.store.tasks;
  const realCheckpoint = tasks.checkpoint.bind(tasks);
  let io = 0;
  tasks.checkpoint = async (t: TaskRecord) => {
    const s = performance.now();
    try {
      return await realCheckpoint(t);
    } finally {
      io += performance.now() - s;
    }
  };
  try {
    const dir = path.join(home, 'ws');
    fs.mkdirSync(dir);
    await engine.store.workspaces.create({ name: 'ws', path: dir, kind: 'path', repo: null, branch: null });
    const per: number[] = [];
    const ios: number[] = [];
    let last = 0;
    let lastIo = 0;
    engine.on('task', (t: TaskRecord) => {
      const now = performance.now();
      if (t.status === 'running' || t.status === 'completed') {
        if (last) {
          per.push(now - last);
          ios.push(io - lastIo);
        }
        last = now;
        lastIo = io;
      }
    });
    const t = await engine.startTask({ template: 'bench', workspace: 'ws' });
    await engine.waitForSettled(t.id);
    const over = per.map((p, i) => Math.max(0, p - (ios[i] ?? 0)));
    return {
      per_step_p50_ms: r3(pct(sortNum(per), 50)),
      per_step_p99_ms: r3(pct(sortNum(per), 99)),
      io_p50_ms: r3(pct(sortNum(ios), 50)),
      overhead_p50_ms: r3(pct(sortNum(over), 50)),
      overhead_p99_ms: r3(pct(sortNum(over), 99)),
    };
  } finally {
    tasks.checkpoint = realCheckpoint;
    await engine.shutdown(1000);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

// ---- scale --------------------------------------------------------------------------

const INTERRUPTED = 20;

/** Writes `n` real task directories (task.json + task.log) with a mix of statuses. */
function populate(home: string, n: number): void {
  const wsCount = 10;
  const base = Date.UTC(2026, 0, 1);
  for (let w = 0; w < wsCount; w++) {
    const dir = path.join(home, `wsdir${w}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(path.join(home, 'workspaces', `ws${w}`, 'tasks'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(home, 'workspaces', `ws${w}`, 'workspace.json'), JSON.stringify({ schema_version: SCHEMA_VERSION, name: `ws${w}`, path: dir, kind: 'path', repo: null, branch: null, created_at: new Date(base).toISOString() }));
  }
  const mix: TaskStatus[] = ['completed', 'completed', 'completed', 'completed', 'completed', 'completed', 'failed', 'abandoned', 'awaiting_approval', 'validation_failed'];
  for (let i = 0; i < n; i++) {
    const t = new Date(base + i * 1000);
    const p = (x: number) => String(x).padStart(2, '0');
    const id = `task-${t.getUTCFullYear()}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}-${p(t.getUTCHours())}${p(t.getUTCMinutes())}${p(t.getUTCSeconds())}`;
    const ws = `ws${i % wsCount}`;
    const interrupted = i >= n - INTERRUPTED;
    const status: TaskStatus = interrupted ? 'running' : mix[i % mix.length]!;
    const at = t.toISOString();
    const steps = Array.from({ length: 5 }, (_, k) => ({
      name: `s${k}`,
      type: 'wait',
      status: interrupted ? (k === 0 ? 'completed' : k === 1 ? 'running' : 'pending') : status === 'completed' ? 'completed' : k < 2 ? 'completed' : k === 2 ? 'failed' : 'pending',
      attempts: k <= 2 ? 1 : 0,
      started_at: k <= 2 ? at : null,
      completed_at: k < 2 ? at : null,
      error: null,
      definition: { name: `s${k}`, type: 'wait', duration: '0s' },
      process: null,
      deadline: null,
      next_attempt_at: null,
    }));
    const task = {
      schema_version: SCHEMA_VERSION,
      id,
      workspace: ws,
      template: i % 3 === 0 ? 'validate' : 'demo',
      description: `bench task ${i}`,
      inputs: { n: String(i) },
      status,
      current_step: interrupted ? 1 : status === 'completed' ? 5 : 2,
      steps,
      step_results: steps.filter((s) => s.status === 'completed').map((s, k) => ({ step_index: k, step_name: s.name, attempt: 1, status: 'completed', started_at: at, completed_at: at, duration_ms: 3, exit_code: 0, signal: null, error: null, artifacts: [], files_changed: [], output_bytes: 0, output_truncated: false })),
      transitions: [{ from_status: null, to_status: 'pending', timestamp: at, reason: 'created' }, { from_status: 'pending', to_status: 'running', timestamp: at, reason: 'picked up' }],
      priority: 0,
      created_at: at,
      updated_at: at,
      completed_at: status === 'completed' || status === 'abandoned' ? at : null,
      revision: 3,
      error: status === 'failed' ? 'step s2 failed' : null,
      workdir: path.join(home, `wsdir${i % wsCount}`),
      env: {},
    } as unknown as TaskRecord;
    const dir = path.join(home, 'workspaces', ws, 'tasks', id);
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'task.json'), encodeTask(task), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'task.log'), JSON.stringify({ level: 'info', time: at, event: 'task_created', task }) + '\n', { mode: 0o600 });
  }
}

interface DaemonRun {
  pid: number;
  ready_ms: number;
  stop(): Promise<void>;
}

async function startDaemonProcess(home: string): Promise<DaemonRun> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, '--home', home, '--quiet'], { stdio: 'ignore', detached: true });
  for (;;) {
    try {
      const c = await AtlasClient.connect(home, { timeoutMs: 500 });
      await c.call('daemon.ping');
      c.close();
      break;
    } catch {
      if (child.exitCode !== null) throw new Error('the daemon exited during start');
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const ready = performance.now() - t0;
  return {
    pid: child.pid!,
    ready_ms: r1(ready),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
    },
  };
}

async function timeCalls(client: AtlasClient, n: number, call: (i: number) => Promise<unknown>): Promise<{ p50_ms: number; p99_ms: number }> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call(i);
    lat.push(performance.now() - t);
  }
  const s = sortNum(lat);
  return { p50_ms: r3(pct(s, 50)), p99_ms: r3(pct(s, 99)) };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? r1(Number(m[1]) / 1024) : NaN;
}

async function scale(n: number): Promise<Record<string, unknown>> {
  const home = fs.mkdtempSync(path.join(scratch, `scale-${n}-`));
  const t0 = performance.now();
  populate(home, n);
  const populateS = (performance.now() - t0) / 1000;
  const spawnWall = Date.now();
  // Cold: no index snapshot yet. The interrupted tasks run again from this start.
  const cold = await startDaemonProcess(home);
  let resumeMs = NaN;
  const deadline = Date.now() + 60_000;
  const ids = fs.readdirSync(path.join(home, 'workspaces')).flatMap((ws) => fs.readdirSync(path.join(home, 'workspaces', ws, 'tasks')).map((id) => ({ ws, id })));
  const interrupted = ids.sort((a, b) => (a.id < b.id ? -1 : 1)).slice(-INTERRUPTED);
  for (;;) {
    const firsts = interrupted.map(({ ws, id }) => {
      const log = fs.readFileSync(path.join(home, 'workspaces', ws, 'tasks', id, 'task.log'), 'utf8');
      const m = /"time":"([^"]+)","event":"step_interrupted"/.exec(log);
      return m ? Date.parse(m[1]!) : undefined;
    });
    if (firsts.every((x) => x !== undefined)) {
      resumeMs = Math.min(...(firsts as number[])) - spawnWall;
      break;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const client = await AtlasClient.connect(home);
  let statusDone = false;
  for (let i = 0; i < 500 && !statusDone; i++) {
    const list = (await client.call('task.list', { status: 'running' })) as unknown[];
    if (list.length === 0) statusDone = true;
    else await new Promise((r) => setTimeout(r, 20));
  }
  const allIds = ids.map((x) => x.id);
  const listNewest = await timeCalls(client, 200, () => client.call('task.list', { limit: 50 }));
  const listFailed = await timeCalls(client, 200, () => client.call('task.list', { status: 'failed', limit: 50 }));
  const listFailedAll = await timeCalls(client, 50, () => client.call('task.list', { status: 'failed' }));
  const show = await timeCalls(client, 300, (i) => client.call('task.get', { id: allIds[(i * 7919) % allIds.length]! }));
  const rss = rssMb(cold.pid);
  client.close();
  await cold.stop();
  // Warm: the index snapshot saved at stop lets the next start skip reading every task.
  const warm = await startDaemonProcess(home);
  const rssWarm = rssMb(warm.pid);
  await warm.stop();
  fs.rmSync(home, { recursive: true, force: true });
  return {
    tasks: n,
    populate_s: r1(populateS),
    ready_cold_ms: cold.ready_ms,
    ready_warm_ms: warm.ready_ms,
    interrupted_rerun_ms: resumeMs,
    list_newest50: listNewest,
    list_failed_50: listFailed,
    list_failed_all: listFailedAll,
    show,
    rss_mb: rss,
    rss_warm_idle_mb: rssWarm,
  };
}

// ---- main ---------------------------------------------------------------------------

function line(label: string, value: string, target = '', verdict = ''): void {
  console.log(`${label.padEnd(46)} ${value.padEnd(26)} ${target.padEnd(16)} ${verdict}`);
}

async function main(): Promise<void> {
  if (argv.includes('--webhooks-only')) {
    const rounds = Number(argv[argv.indexOf('--rounds') + 1]);
    const kind = argv[argv.indexOf('--kind') + 1];
    const wh = await webhookOverhead(argv.includes('--rounds') && rounds > 0 ? rounds : 3, argv.includes('--kind') && (kind === 'wait' || kind === 'shell') ? [kind] : ['wait', 'shell']);
    console.log(JSON.stringify(wh, null, 2));
    fs.rmSync(scratch, { recursive: true, force: true });
    return;
  }
  console.log(`atlas bench on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${results['machine'] && (results['machine'] as { filesystem_tmp: string }).filesystem_tmp} at ${os.tmpdir()}, ${process.version}\n`);
  const floor: Record<string, unknown> = {};
  for (const n of [1, 4, 8, 16]) {
    floor[`checkpoint_${n}`] = await floorCheckpoint(n);
    floor[`spawn_${n}`] = await floorSpawn(n);
  }
  results['floor'] = floor;
  const f = (k: string) => (floor[k] as { ops_per_s: number }).ops_per_s;
  line('floor: durable replace, 1/4/8/16 in flight', `${f('checkpoint_1')} / ${f('checkpoint_4')} / ${f('checkpoint_8')} / ${f('checkpoint_16')} /s`);
  line('floor: spawn sh -c true, 1/4/8/16 in flight', `${f('spawn_1')} / ${f('spawn_4')} / ${f('spawn_8')} / ${f('spawn_16')} /s`);

  const targets: Array<{ name: string; ok: boolean }> = [];
  const tp: Record<string, unknown> = {};
  for (const conc of [4, 16]) {
    // 8 tasks: at concurrency 16 only 8 are in flight.
    const inFlight = Math.min(conc, 8);
    const cpFloor = f(`checkpoint_${inFlight}`);
    const spFloor = f(`spawn_${inFlight}`);
    const w = await throughput('wait', conc);
    const s = await throughput('shell', conc);
    const wr = r3(w.steps_per_s / cpFloor);
    const sr = r3(s.steps_per_s / spFloor);
    tp[`wait_c${conc}`] = { ...w, floor_ops_per_s: r1(cpFloor), ratio: wr };
    tp[`shell_c${conc}`] = { ...s, floor_ops_per_s: r1(spFloor), ratio: sr };
    const isDefault = conc === DEFAULT_CONFIG.max_concurrent_tasks;
    line(`no-work steps, concurrency ${conc}`, `${w.steps_per_s} steps/s = ${wr}x floor`, isDefault ? '>= 0.6x' : '', isDefault ? verdict(wr >= 0.6) : '');
    line(`shell steps, concurrency ${conc}`, `${s.steps_per_s} steps/s = ${sr}x floor`, isDefault ? '>= 0.8x' : '', isDefault ? verdict(sr >= 0.8) : '');
    if (isDefault) targets.push({ name: 'no-work steps >= 0.6x checkpoint floor', ok: wr >= 0.6 }, { name: 'shell steps >= 0.8x spawn floor', ok: sr >= 0.8 });
  }
  results['throughput'] = tp;

  const wh = await webhookOverhead(quick ? 2 : 3);
  results['webhook_overhead'] = wh;
  for (const kind of ['wait', 'shell'] as const) {
    const w = wh[kind] as { none_steps_per_s: number; one_webhook_steps_per_s: number; slower_pct: number };
    line(`${kind === 'wait' ? 'no-work' : 'shell'} steps with 1 webhook endpoint (all events) vs none`, `${w.one_webhook_steps_per_s} vs ${w.none_steps_per_s} steps/s: ${w.slower_pct}% slower (median of ${quick ? 2 : 3} pairs)`, '<= 10%', verdict(w.slower_pct <= 10));
    targets.push({ name: `${kind} steps with a webhook <= 10% slower`, ok: w.slower_pct <= 10 });
  }

  const ov = await overhead();
  results['overhead'] = ov;
  line('step overhead beyond durable I/O, p50', `${ov.overhead_p50_ms} ms (step ${ov.per_step_p50_ms} ms)`, '<= 1 ms', verdict(ov.overhead_p50_ms <= 1));
  line('step overhead beyond durable I/O, p99', `${ov.overhead_p99_ms} ms (step ${ov.per_step_p99_ms} ms)`, '<= 5 ms', verdict(ov.overhead_p99_ms <= 5));
  targets.push({ name: 'overhead p50 <= 1 ms', ok: ov.overhead_p50_ms <= 1 }, { name: 'overhead p99 <= 5 ms', ok: ov.overhead_p99_ms <= 5 });

  // Cost flat in task length: a no-work step of a 1,000-step task against one of 10-step tasks.
  const len = await lengthBench(scratch, quick ? 200 : 1000);
  results['task_length'] = len;
  line(`no-work step cost, ${len.long_steps}-step vs ${len.short_steps}-step task (median)`, `${len.long_median_ms} vs ${len.short_median_ms} ms = ${len.ratio}x`, `<= ${len.target}x`, verdict(len.met));
  line(`  means; last tenth (task.json ${len.task_json_kb_at_end} KB)`, `${len.long_mean_ms} vs ${len.short_mean_ms} ms; ${len.long_tail_median_ms} ms`);
  targets.push({ name: `no-work step of a ${len.long_steps}-step task <= ${len.target}x a ${len.short_steps}-step one`, ok: len.met });

  const sc: Array<Record<string, unknown>> = [];
  for (const n of SIZES) {
    const s = await scale(n);
    sc.push(s);
    const big = n >= 10_000;
    const g = (k: string, q: 'p50_ms' | 'p99_ms') => (s[k] as Record<string, number>)[q]!;
    console.log(`\n${n} tasks in the home`);
    line('  daemon start to ready (cold / warm)', `${s['ready_cold_ms']} / ${s['ready_warm_ms']} ms`, big ? '<= 300 ms' : '', big ? verdict(Number(s['ready_warm_ms']) <= 300) : '');
    line('  interrupted tasks running again after spawn', `${s['interrupted_rerun_ms']} ms`);
    line('  list newest 50, p50 / p99', `${g('list_newest50', 'p50_ms')} / ${g('list_newest50', 'p99_ms')} ms`, big ? '<= 20 ms p99' : '', big ? verdict(g('list_newest50', 'p99_ms') <= 20) : '');
    line('  list --status failed (50), p50 / p99', `${g('list_failed_50', 'p50_ms')} / ${g('list_failed_50', 'p99_ms')} ms`, big ? '<= 20 ms p99' : '', big ? verdict(g('list_failed_50', 'p99_ms') <= 20) : '');
    line('  list --status failed (all), p50 / p99', `${g('list_failed_all', 'p50_ms')} / ${g('list_failed_all', 'p99_ms')} ms`);
    line('  show, p50 / p99', `${g('show', 'p50_ms')} / ${g('show', 'p99_ms')} ms`, big ? '<= 5 ms p99' : '', big ? verdict(g('show', 'p99_ms') <= 5) : '');
    line('  daemon RSS after the queries', `${s['rss_mb']} MB`, big ? '<= 80 MB' : '', big ? verdict(Number(s['rss_mb']) <= 80) : '');
    if (n >= 100_000) {
      line('  100k: ready (warm) / list p99 / RSS', `${s['ready_warm_ms']} ms / ${g('list_newest50', 'p99_ms')} ms / ${s['rss_mb']} MB`, '1.5 s/20 ms/150 MB', verdict(Number(s['ready_warm_ms']) <= 1500 && g('list_newest50', 'p99_ms') <= 20 && g('list_failed_50', 'p99_ms') <= 20 && Number(s['rss_mb']) <= 150));
      targets.push(
        { name: 'ready <= 1.5 s at 100k (warm)', ok: Number(s['ready_warm_ms']) <= 1500 },
        { name: 'list newest 50 and list --status failed p99 <= 20 ms at 100k', ok: g('list_newest50', 'p99_ms') <= 20 && g('list_failed_50', 'p99_ms') <= 20 },
        { name: 'RSS <= 150 MB at 100k', ok: Number(s['rss_mb']) <= 150 },
      );
    } else if (big) {
      targets.push(
        { name: 'ready <= 300 ms at 10k (warm)', ok: Number(s['ready_warm_ms']) <= 300 },
        { name: 'list newest 50 p99 <= 20 ms', ok: g('list_newest50', 'p99_ms') <= 20 },
        { name: 'list --status failed p99 <= 20 ms', ok: g('list_failed_50', 'p99_ms') <= 20 },
        { name: 'show p99 <= 5 ms', ok: g('show', 'p99_ms') <= 5 },
        { name: 'RSS <= 80 MB', ok: Number(s['rss_mb']) <= 80 },
      );
    }
  }
  results['scale'] = sc;
  // Queries (issue 13): filtered lists over 10,000 and 100,000 tasks, against a status call.
  const qs: QueryFigures[] = [];
  for (const n of quick ? [1000] : BIG ? [10_000, 100_000] : [10_000]) {
    const f = await queryBench(n, scratch);
    qs.push(f);
    printQueryFigures(f, line);
    if (n >= 10_000) targets.push({ name: `filtered list p99 within +${f.target_ms} ms of a status call at ${n} tasks`, ok: f.met });
  }
  results['queries'] = qs;
  if (sc.length >= 2) {
    const first = sc[0]!;
    const last = sc[sc.length - 1]!;
    const growth = (k: string) => r3(Number(last[k]) / Number(first[k]) / (Number(last['tasks']) / Number(first['tasks'])));
    const g = { ready_cold: growth('ready_cold_ms'), ready_warm: growth('ready_warm_ms') };
    results['growth_per_task_ratio'] = g;
    console.log(`\ncost growth relative to linear from ${first['tasks']} to ${last['tasks']} tasks (1.0 = linear, less = sublinear): ready cold ${g.ready_cold}, warm ${g.ready_warm}`);
    // How each figure grows from the smallest to the largest home (x times, for x times the tasks).
    const p99 = (x: Record<string, unknown>, k: string) => (x[k] as { p99_ms: number }).p99_ms;
    const times = (a: number, b: number) => r1(b / a);
    const grows = {
      tasks_x: times(Number(first['tasks']), Number(last['tasks'])),
      ready_warm_x: times(Number(first['ready_warm_ms']), Number(last['ready_warm_ms'])),
      show_p99_x: times(p99(first, 'show'), p99(last, 'show')),
      list_p99_x: times(p99(first, 'list_newest50'), p99(last, 'list_newest50')),
      list_failed_p99_x: times(p99(first, 'list_failed_50'), p99(last, 'list_failed_50')),
      rss_x: times(Number(first['rss_mb']), Number(last['rss_mb'])),
    };
    results['growth'] = grows;
    console.log(`from ${first['tasks']} to ${last['tasks']} tasks (${grows.tasks_x}x): ready ${grows.ready_warm_x}x, show p99 ${grows.show_p99_x}x, list p99 ${grows.list_p99_x}x, list --status p99 ${grows.list_failed_p99_x}x, RSS ${grows.rss_x}x`);
    targets.push({ name: 'start cost grows no faster than linearly', ok: g.ready_cold <= 1.05 && g.ready_warm <= 1.05 });
  }
  // Keeping history (issue 14): prune's saving and speed, backup and restore of a big home.
  const hist = await historyBench(scratch, quick ? { pruneTasks: 200, backupTasks: 1000 } : {});
  results['history'] = hist;
  console.log('\nkeeping history');
  line(`  ${hist.prune.tasks} finished demo tasks, disk before / after prune`, `${hist.prune.disk_before_kb} / ${hist.prune.disk_after_kb} KB = ${hist.prune.ratio}x`);
  line('  prune throughput', `${hist.prune.tasks_per_s} tasks/s`);
  line(`  ${hist.backup.tasks} tasks: backup / restore`, `${hist.backup.seconds} / ${hist.backup.restore_seconds} s (${hist.backup.file_mb} MiB)`);
  // CLI latency against node -e 0, in the same run.
  const cli = await cliBench(scratch, quick ? 5 : 15);
  results['cli'] = cli;
  console.log(`\nCLI as users run it (median of ${cli.runs}; node -e 0 takes ${cli.node_e0_ms} ms)`);
  for (const [name, f] of Object.entries(cli.commands)) {
    line(`  atlas ${name}`, `${f.median_ms} ms = ${f.ratio}x node -e 0`, `<= ${f.target}x`, verdict(f.met));
    targets.push({ name: `atlas ${name} <= ${f.target}x node -e 0`, ok: f.met });
  }
  // The PostgreSQL store on the same workload, beside the filesystem figures; takeover after kill -9.
  const pgf = await pgBench(scratch, quick ? { kills: 3 } : {});
  results['postgres'] = pgf;
  if (pgf.skipped) console.log(`\nPostgreSQL store not run: ${pgf.skipped}`);
  else {
    const fsOf = (k: string) => (tp[k] as { steps_per_s: number }).steps_per_s;
    console.log(`\nPostgreSQL store (${pgf.server}), 8 tasks x 100 steps at 4 in flight, beside the filesystem store`);
    line('  no-work steps', `${pgf.wait_c4!.steps_per_s} steps/s (fs ${fsOf('wait_c4')})`);
    line('  shell steps', `${pgf.shell_c4!.steps_per_s} steps/s (fs ${fsOf('shell_c4')})`);
    const t = pgf.takeover!;
    line(`  takeover after kill -9 (${t.kills} kills)`, `p50 ${t.p50_ms} ms, p99 ${t.p99_ms} ms`, '<= 2000 ms', verdict(t.p99_ms <= 2000));
    targets.push({ name: 'PostgreSQL takeover p99 <= 2 s after kill -9', ok: t.p99_ms <= 2000 });
    const st = pgf.takeover_stopped;
    if (st) {
      const goal = (STOP_TTL_S + 3) * 1000;
      line(`  takeover of a SIGSTOPped owner, lease_ttl ${STOP_TTL_S}s (${st.kills} runs)`, `p50 ${st.p50_ms} ms, p99 ${st.p99_ms} ms`, `<= ${goal} ms`, verdict(st.p99_ms <= goal));
      targets.push({ name: 'PostgreSQL takeover p99 <= TTL + 3 s after SIGSTOP', ok: st.p99_ms <= goal });
    }
    if (pgf.queries) {
      printQueryFigures(pgf.queries, line);
      console.log('  (PostgreSQL store: the queries run in SQL)');
    }
  }
  // The peers on the same workload (8 x 100 at 4 in flight), when PG_URL is set.
  const peers = runPeers(scratch);
  results['peers'] = peers;
  if (peers.skipped) console.log(`\npeers not run: ${peers.skipped}`);
  else {
    const ours = { shell: (tp['shell_c4'] as { steps_per_s: number }).steps_per_s, noop: (tp['wait_c4'] as { steps_per_s: number }).steps_per_s };
    console.log('\npeers, 8 tasks x 100 steps at 4 in flight (atlas from this run)');
    for (const p of peers.figures) line(`  ${p.peer} ${p.mode}`, p.steps_per_s === null ? `failed: ${p.error}` : `${p.steps_per_s} steps/s (atlas ${ours[p.mode]}: ${r3(ours[p.mode] / p.steps_per_s)}x)`);
  }
  results['targets'] = targets;
  results['finished_at'] = new Date().toISOString();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  const missed = targets.filter((t) => !t.ok);
  console.log(`\n${targets.length - missed.length}/${targets.length} targets met${missed.length ? `; missed: ${missed.map((t) => t.name).join('; ')}` : ''}\nfigures written to ${OUT}`);
}

function verdict(ok: boolean): string {
  return ok ? 'ok' : 'MISSED';
}

try {
  if (argv[0] === '--populate') {
    // node dist/scripts/bench.js --populate DIR N: only write a home of N tasks (for profiling).
    fs.mkdirSync(argv[1]!, { recursive: true });
    populate(argv[1]!, Number(argv[2] ?? 10_000));
  } else {
    await main();
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
