// A generated task history, written straight into a home as real task files (task.json and
// a one-line task.log), for the query tests and `npm run bench`: statuses, workspaces,
// templates, labels, inputs, errors and creation times spread so that every `atlas list`
// filter selects a real share of it. Deterministic for a given seed.
import fs from 'node:fs';
import path from 'node:path';
import { SCHEMA_VERSION, type TaskRecord, type TaskStatus } from '../src/store/records.js';
import { encodeTask } from '../src/store/task-codec.js';

export interface HistoryOptions {
  /** Number of tasks. */
  n: number;
  /** The newest task is created at this time; older ones every `spacingMs` before it. */
  newest: Date;
  spacingMs: number;
  workspaces?: number;
  seed?: number;
}

const STATUSES: TaskStatus[] = ['completed', 'completed', 'completed', 'completed', 'failed', 'failed', 'abandoned', 'rejected', 'awaiting_approval', 'validation_failed', 'ci_timeout', 'interrupted'];
const TEMPLATES = ['validate', 'demo', 'release', 'bugfix'];
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'Foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
const ERRORS = ['step build failed: exit 2', 'step checks timed out after 10m (Timeout)', 'ci: checks failed', 'connection reset by peer', 'step deploy timed out'];

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function taskIdAt(t: Date): string {
  const p = (x: number) => String(x).padStart(2, '0');
  return `task-${t.getUTCFullYear()}${p(t.getUTCMonth() + 1)}${p(t.getUTCDate())}-${p(t.getUTCHours())}${p(t.getUTCMinutes())}${p(t.getUTCSeconds())}`;
}

/** The records of a history, oldest first (nothing written). */
export function generateHistory(o: HistoryOptions): TaskRecord[] {
  const rand = rng(o.seed ?? 42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const wsCount = o.workspaces ?? 5;
  const out: TaskRecord[] = [];
  const spacing = Math.max(1000, Math.round(o.spacingMs / 1000) * 1000);
  const newest = Math.floor(o.newest.getTime() / 1000) * 1000;
  for (let i = 0; i < o.n; i++) {
    const at = new Date(newest - (o.n - 1 - i) * spacing);
    const iso = at.toISOString();
    const status = pick(STATUSES);
    const labels: Record<string, string> = {};
    if (rand() < 0.7) labels['team'] = pick(['infra', 'web', 'data']);
    if (rand() < 0.3) labels['env'] = pick(['prod', 'staging']);
    const failed = !['completed', 'awaiting_approval', 'abandoned'].includes(status);
    const done = status === 'completed' || status === 'abandoned' || status === 'rejected';
    out.push({
      schema_version: SCHEMA_VERSION,
      id: taskIdAt(at),
      workspace: `ws${i % wsCount}`,
      template: pick(TEMPLATES),
      description: `${pick(WORDS)} ${pick(WORDS)} task ${i}`,
      inputs: { topic: pick(WORDS), ticket: `T-${Math.floor(rand() * 5000)}` },
      status,
      current_step: done ? 1 : 0,
      steps: [
        { name: 'work', type: 'wait', status: done && status === 'completed' ? 'completed' : 'pending', attempts: 1, started_at: iso, completed_at: done ? iso : null, error: null, definition: { name: 'work', type: 'wait', duration: '0s' }, process: null, deadline: null, next_attempt_at: null },
      ],
      step_results: [],
      transitions: [{ from_status: null, to_status: 'pending', timestamp: iso, reason: 'created' }],
      priority: 0,
      created_at: iso,
      updated_at: iso,
      completed_at: done ? iso : null,
      revision: 2,
      error: failed ? pick(ERRORS) : null,
      workdir: '/nonexistent',
      env: {},
      ...(Object.keys(labels).length ? { labels } : {}),
    });
  }
  return out;
}

/** Writes workspaces and tasks into `home` as a daemon would have left them. */
export function writeHistory(home: string, tasks: readonly TaskRecord[]): void {
  const wsNames = [...new Set(tasks.map((t) => t.workspace))];
  for (const ws of wsNames) {
    const dir = path.join(home, 'wsdirs', ws);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.join(home, 'workspaces', ws, 'tasks'), { recursive: true, mode: 0o700 });
    const rec = { schema_version: SCHEMA_VERSION, name: ws, path: dir, kind: 'path', repo: null, branch: null, created_at: tasks[0]?.created_at ?? new Date().toISOString() };
    fs.writeFileSync(path.join(home, 'workspaces', ws, 'workspace.json'), JSON.stringify(rec), { mode: 0o600 });
  }
  for (const t of tasks) {
    const dir = path.join(home, 'workspaces', t.workspace, 'tasks', t.id);
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'task.json'), encodeTask({ ...t, workdir: path.join(home, 'wsdirs', t.workspace) }), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'task.log'), JSON.stringify({ level: 'info', time: t.created_at, event: 'task_created' }) + '\n', { mode: 0o600 });
  }
}
