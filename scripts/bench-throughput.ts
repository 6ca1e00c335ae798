// The throughput run both stores share: `tasks` tasks of the home's `bench` template, one per
// workspace, started at once through one engine, timed until every one has settled.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../src/config/config.js';
import { Engine } from '../src/engine/engine.js';

export async function measureThroughput(home: string, config: Config, tasks: number, steps: number, what = 'bench'): Promise<{ steps_per_s: number; seconds: number }> {
  const engine = await Engine.open({ home, config });
  await engine.start();
  try {
    for (let i = 0; i < tasks; i++) {
      const dir = path.join(home, `ws${i}`);
      fs.mkdirSync(dir);
      await engine.store.workspaces.create({ name: `ws${i}`, path: dir, kind: 'path', repo: null, branch: null });
    }
    const t0 = performance.now();
    const started = await Promise.all(Array.from({ length: tasks }, (_, i) => engine.startTask({ template: 'bench', workspace: `ws${i}` })));
    const done = await Promise.all(started.map((t) => engine.waitForSettled(t.id)));
    const secs = (performance.now() - t0) / 1000;
    const bad = done.filter((t) => t.status !== 'completed');
    if (bad.length) throw new Error(`${bad.length} ${what} tasks did not complete: ${bad[0]?.error}`);
    return { steps_per_s: Math.round(((tasks * steps) / secs) * 10) / 10, seconds: Math.round(secs * 1000) / 1000 };
  } finally {
    await engine.shutdown(1000);
    fs.rmSync(home, { recursive: true, force: true });
  }
}
