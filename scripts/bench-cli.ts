// CLI latency (issue 17, goal 4): `atlas list`, `show`, `daemon status` within 1.5x of
// `node -e 0`, `atlas start` within 2x, each run as users run it (the package.json `bin`)
// against a running daemon, interleaved with `node -e 0` in the same run so load drifts hit
// both alike. Figures are medians of wall time per command.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AtlasClient, DAEMON_MAIN, DAEMON_NODE_FLAGS } from '../src/client/client.js';
import { packageRoot } from '../src/util/package-root.js';

export interface CliFigures {
  runs: number;
  node_e0_ms: number;
  commands: Record<string, { median_ms: number; ratio: number; target: number; met: boolean }>;
}

const r1 = (n: number) => Math.round(n * 10) / 10;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;

/** The CLI users run: package.json's bin. */
export function cliEntry(): string {
  const root = packageRoot();
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return path.join(root, pkg.bin['atlas']!);
}

function timeRun(args: string[]): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${args.slice(0, 3).join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').at(-1)}`);
  return ms;
}

export async function cliBench(scratch: string, runs = 15): Promise<CliFigures> {
  const home = fs.mkdtempSync(path.join(scratch, 'cli-'));
  const ws = path.join(home, 'wsdir');
  fs.mkdirSync(ws);
  fs.mkdirSync(path.join(home, 'templates'));
  fs.writeFileSync(path.join(home, 'templates', 'one.yaml'), 'name: one\nsteps:\n  - name: s\n    type: wait\n    duration: 0s\n');
  const daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, '--home', home, '--quiet'], { stdio: 'ignore', detached: true });
  try {
    const deadline = Date.now() + 60_000;
    let client: AtlasClient | undefined;
    while (!client) {
      try {
        client = await AtlasClient.connect(home, { timeoutMs: 1000 });
        await client.call('daemon.ping');
      } catch {
        client?.close();
        client = undefined;
        if (daemon.exitCode !== null || Date.now() > deadline) throw new Error('the bench daemon did not start');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await client.call('workspace.create', { name: 'ws', path: ws });
    const first = await client.call('task.start', { template: 'one', workspace: 'ws' });
    await client.call('task.wait', { id: first.id });
    client.close();
    const cli = cliEntry();
    const commands: Record<string, { args: string[]; target: number }> = {
      list: { args: [cli, '--home', home, 'list'], target: 1.5 },
      show: { args: [cli, '--home', home, 'show', first.id], target: 1.5 },
      'daemon status': { args: [cli, '--home', home, 'daemon', 'status'], target: 1.5 },
      start: { args: [cli, '--home', home, 'start', 'one', '-w', 'ws'], target: 2 },
    };
    const base: number[] = [];
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
    for (const c of Object.values(commands)) timeRun(c.args); // warm the page cache
    for (let i = 0; i < runs; i++) {
      base.push(timeRun(['-e', '0']));
      for (const [name, c] of Object.entries(commands)) times[name]!.push(timeRun(c.args));
    }
    const node = median(base);
    const out: CliFigures['commands'] = {};
    for (const [name, c] of Object.entries(commands)) {
      const m = median(times[name]!);
      out[name] = { median_ms: r1(m), ratio: r1((m / node) * 100) / 100, target: c.target, met: m / node <= c.target };
    }
    return { runs, node_e0_ms: r1(node), commands: out };
  } finally {
    daemon.kill('SIGTERM');
    await new Promise<void>((r) => (daemon.exitCode !== null || daemon.signalCode !== null ? r() : daemon.once('exit', () => r())));
    fs.rmSync(home, { recursive: true, force: true });
  }
}
