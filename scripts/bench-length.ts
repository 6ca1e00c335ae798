// Cost flat in task length (issue 17, goal 2): the engine's time per no-work step (`wait 0s`)
// in a task of 1,000 steps against one in tasks of 10 steps, in the same run. Each figure is
// the time between consecutive step checkpoints within a task; the verdict compares medians
// (a cost that grew with the task would move the long task's median, which sits at its
// middle size; a few load spikes on a shared machine do not), and the means and the long
// task's last tenth (its largest task.json) are shown beside them. The 10-step figure is over
// several tasks run one after another, so both cover about as many steps. Target: 1,000-step
// cost at most 1.3x the 10-step cost.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { Engine } from '../src/engine/engine.js';
import type { TaskRecord } from '../src/store/records.js';

export interface LengthFigures {
  short_steps: number;
  long_steps: number;
  short_median_ms: number;
  long_median_ms: number;
  short_mean_ms: number;
  long_mean_ms: number;
  /** The last tenth of the long task alone (median): where task.json is largest. */
  long_tail_median_ms: number;
  task_json_kb_at_end: number;
  ratio: number;
  target: number;
  met: boolean;
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;

function template(home: string, name: string, steps: number): void {
  fs.mkdirSync(path.join(home, 'templates'), { recursive: true });
  const lines = [`name: ${name}`, 'steps:'];
  for (let i = 0; i < steps; i++) lines.push(`  - name: s${i}`, '    type: wait', '    duration: 0s');
  fs.writeFileSync(path.join(home, 'templates', `${name}.yaml`), lines.join('\n') + '\n');
}

/** Per-step intervals (ms) of `tasks` tasks of `steps` no-work steps, run one after another. */
async function intervals(scratch: string, steps: number, tasks: number): Promise<{ per: number[]; bytes: number }> {
  const home = fs.mkdtempSync(path.join(scratch, `length-${steps}-`));
  template(home, 'len', steps);
  const engine = await Engine.open({ home, config: { ...DEFAULT_CONFIG } });
  await engine.start();
  const per: number[] = [];
  let bytes = 0;
  try {
    const dir = path.join(home, 'ws');
    fs.mkdirSync(dir);
    await engine.store.workspaces.create({ name: 'ws', path: dir, kind: 'path', repo: null, branch: null });
    // Warm up: one short task, not counted.
    await engine.waitForSettled((await engine.startTask({ template: 'len', workspace: 'ws' })).id);
    const last = new Map<string, number>();
    const current = new Map<string, number>();
    engine.on('task', (t: TaskRecord) => {
      // One mark per finished step: the checkpoint that moves current_step on.
      if (current.get(t.id) === t.current_step) return;
      current.set(t.id, t.current_step);
      const now = performance.now();
      const prev = last.get(t.id);
      if (prev !== undefined && (t.status === 'running' || t.status === 'completed')) per.push(now - prev);
      last.set(t.id, now);
    });
    for (let i = 0; i < tasks; i++) {
      const t = await engine.startTask({ template: 'len', workspace: 'ws' });
      const done = await engine.waitForSettled(t.id);
      if (done.status !== 'completed') throw new Error(`a ${steps}-step bench task ended ${done.status}`);
      bytes = fs.statSync(engine.store.paths.taskFile('ws', t.id)).size;
    }
  } finally {
    await engine.shutdown(1000);
    fs.rmSync(home, { recursive: true, force: true });
  }
  return { per, bytes };
}

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / Math.max(1, a.length);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;

export async function lengthBench(scratch: string, longSteps = 1000, shortSteps = 10): Promise<LengthFigures> {
  const shortTasks = Math.max(1, Math.round(longSteps / shortSteps / 2));
  const short = await intervals(scratch, shortSteps, shortTasks);
  const long = await intervals(scratch, longSteps, 1);
  const ratio = r3(median(long.per) / median(short.per));
  return {
    short_steps: shortSteps,
    long_steps: longSteps,
    short_median_ms: r3(median(short.per)),
    long_median_ms: r3(median(long.per)),
    short_mean_ms: r3(mean(short.per)),
    long_mean_ms: r3(mean(long.per)),
    long_tail_median_ms: r3(median(long.per.slice(Math.floor(long.per.length * 0.9)))),
    task_json_kb_at_end: Math.round(long.bytes / 1024),
    ratio,
    target: 1.3,
    met: ratio <= 1.3,
  };
}
