// The peers (issue 17): Graphile Worker and DBOS Transact running the same workload as the
// throughput figures (8 tasks x 100 chained steps, 4 in flight; `shell` spawns /bin/sh -c
// true per step, `noop` only does the durable bookkeeping), in the same run, when PG_URL
// names a PostgreSQL database. The peers' folder (ATLAS_PEERS_DIR, default ../shared/peers)
// is read-only: it is copied to a temp dir and its packages installed there (npm ci).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface PeerFigure {
  peer: 'graphile' | 'dbos';
  mode: 'shell' | 'noop';
  steps_per_s: number | null;
  error?: string;
}

export function peersDir(): string {
  return path.resolve(process.env['ATLAS_PEERS_DIR'] ?? '../shared/peers');
}

/** Runs both peers in both modes; undefined when PG_URL is not set or the peers are not there. */
export function runPeers(scratch: string, tasks = 8, steps = 100, inFlight = 4): { figures: PeerFigure[]; skipped?: string } {
  const url = process.env['PG_URL'];
  if (!url) return { figures: [], skipped: 'PG_URL is not set' };
  const src = peersDir();
  if (!fs.existsSync(path.join(src, 'graphile.mjs'))) return { figures: [], skipped: `no peers at ${src} (set ATLAS_PEERS_DIR)` };
  const dir = fs.mkdtempSync(path.join(scratch, 'peers-'));
  fs.cpSync(src, dir, { recursive: true });
  const install = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  if (install.status !== 0) return { figures: [], skipped: `npm ci in the peers' copy failed: ${(install.stderr || install.stdout || '').trim().split('\n').at(-1)}` };
  const figures: PeerFigure[] = [];
  for (const peer of ['graphile', 'dbos'] as const) {
    for (const mode of ['shell', 'noop'] as const) {
      const r = spawnSync(process.execPath, [`${peer}.mjs`, String(tasks), String(steps), String(inFlight), mode], { cwd: dir, encoding: 'utf8', env: { ...process.env, PG_URL: url }, timeout: 600_000 });
      const line = r.stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      let sps: number | null = null;
      try {
        sps = line ? Number((JSON.parse(line) as { steps_per_s: number }).steps_per_s) : null;
      } catch {
        sps = null;
      }
      figures.push(sps !== null && Number.isFinite(sps) ? { peer, mode, steps_per_s: sps } : { peer, mode, steps_per_s: null, error: (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').at(-1) ?? 'no output' });
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { figures };
}
