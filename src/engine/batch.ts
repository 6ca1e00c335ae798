// Batches (DESIGN §13): `atlas start --batch FILE.yaml` creates a whole graph of tasks at once.
//
//   tasks:
//     - key: tests
//       template: validate
//       workspace: api
//       inputs: { checks: npm test }
//     - { key: review-a, template: review, workspace: api-1, after: [tests] }
//     - { key: release, template: release, workspace: api, after: [review-a], labels: { kind: release } }
//
// All or nothing: the file is read and every task checked first (structure, unknown keys,
// duplicate keys, `after` naming a key that is not in the file, cycles named by their keys,
// then each task's workspace, template, inputs and labels, as `atlas start` would), and every
// problem is reported as `file:line: ...`; nothing is written unless all of it is good. Then
// ids are reserved and the store writes every task or none (store.createTasks: one
// transaction in PostgreSQL, a journal rolled back at the next start in the filesystem), a
// kill -9 part way included. Only once every task is written are they queued.
import path from 'node:path';
import type { Document, LineCounter } from 'yaml';
import { AtlasError } from '../errors.js';
import type { TaskRecord } from '../store/records.js';
import { isValidName } from '../store/names.js';
import { lineAt } from '../templates/loader.js';
import { lazyYaml } from '../util/lazy-package.js';
import type { Engine, PreparedTask, StartParams } from './engine.js';
import { newTaskRecord } from './task-intake.js';

export interface BatchTask {
  key: string;
  line: number;
  params: StartParams;
  /** Keys of tasks in the same batch. */
  after: string[];
}

export interface BatchResult {
  tasks: Array<{ key: string; task: TaskRecord }>;
}

const KEYS = new Set(['key', 'template', 'workspace', 'inputs', 'after', 'description', 'priority', 'labels']);
export const MAX_BATCH = 1000;

function fail(problems: string[]): never {
  throw new AtlasError('invalid_input', problems.join('\n'), { details: { problems } });
}

/** Parses and checks a batch file's structure and graph; returns the tasks in dependency order. */
export function parseBatch(text: string, file: string): BatchTask[] {
  const yaml = lazyYaml();
  const lc = new yaml.LineCounter();
  const doc: Document = yaml.parseDocument(text, { lineCounter: lc as LineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: string[] = [];
  for (const e of doc.errors) problems.push(`${file}:${e.linePos?.[0]?.line ?? 1}: ${e.message.split('\n')[0]}`);
  if (problems.length) fail(problems);
  const line = (...path: PropertyKey[]) => lineAt(doc, lc as LineCounter, path);
  const raw = doc.toJS() as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail([`${file}:1: a batch file holds a map with a 'tasks' list`]);
  for (const k of Object.keys(raw)) if (k !== 'tasks') problems.push(`${file}:${line(k)}: unknown key '${k}' (a batch file holds only 'tasks')`);
  const list = (raw as { tasks?: unknown }).tasks;
  if (!Array.isArray(list) || list.length === 0) fail([...problems, `${file}:${line('tasks')}: tasks: expected a non-empty list of tasks`]);
  if (list.length > MAX_BATCH) fail([`${file}:${line('tasks')}: tasks: at most ${MAX_BATCH} tasks in one batch (got ${list.length})`]);
  const out: BatchTask[] = [];
  const byKey = new Map<string, BatchTask>();
  list.forEach((item: unknown, i) => {
    const at = (...p: PropertyKey[]) => `${file}:${line('tasks', i, ...p)}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      problems.push(`${at()}: tasks[${i}]: expected a map with key, template, workspace`);
      return;
    }
    const t = item as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!KEYS.has(k)) problems.push(`${at(k)}: tasks[${i}]: unknown key '${k}' (known: ${[...KEYS].join(', ')})`);
    const key = t['key'];
    if (typeof key !== 'string' || !isValidName(key)) {
      problems.push(`${at('key')}: tasks[${i}].key: expected a name like 'build' (letters, digits, '.', '_', '-')`);
      return;
    }
    if (byKey.has(key)) {
      problems.push(`${at('key')}: key '${key}' is used twice (first at line ${byKey.get(key)!.line})`);
      return;
    }
    const str = (k: string, required: boolean): string | undefined => {
      const v = t[k];
      if (v === undefined && !required) return undefined;
      if (typeof v !== 'string' || v === '') problems.push(`${at(k)}: ${key}.${k}: expected a string`);
      return typeof v === 'string' ? v : undefined;
    };
    const template = str('template', true);
    const workspace = str('workspace', true);
    const description = str('description', false);
    const strMap = (k: string): Record<string, string> | undefined => {
      const v = t[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        problems.push(`${at(k)}: ${key}.${k}: expected a map of names to values`);
        return undefined;
      }
      const m: Record<string, string> = {};
      for (const [ik, iv] of Object.entries(v)) {
        if (typeof iv === 'string' || typeof iv === 'number' || typeof iv === 'boolean') m[ik] = String(iv);
        else problems.push(`${at(k, ik)}: ${key}.${k}.${ik}: expected a string, number or boolean`);
      }
      return m;
    };
    const inputs = strMap('inputs');
    const labels = strMap('labels');
    let after: string[] = [];
    const a = t['after'];
    if (typeof a === 'string') after = [a];
    else if (Array.isArray(a) && a.every((x) => typeof x === 'string')) after = a as string[];
    else if (a !== undefined) problems.push(`${at('after')}: ${key}.after: expected a list of keys`);
    const priority = t['priority'];
    if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority))) problems.push(`${at('priority')}: ${key}.priority: expected a whole number`);
    const bt: BatchTask = {
      key,
      line: line('tasks', i),
      after: [...new Set(after)],
      params: {
        template: template ?? '',
        ...(template && (template.includes('/') || /\.ya?ml$/.test(template)) ? { template_file: path.resolve(path.dirname(file), template) } : {}),
        workspace: workspace ?? '',
        ...(inputs ? { inputs } : {}),
        ...(labels ? { labels } : {}),
        ...(description !== undefined ? { description } : {}),
        ...(typeof priority === 'number' ? { priority } : {}),
      },
    };
    byKey.set(key, bt);
    out.push(bt);
  });
  list.forEach((_: unknown, i) => {
    const bt = out.find((b) => b.line === line('tasks', i));
    if (!bt) return;
    bt.after.forEach((k, j) => {
      if (k === bt.key) problems.push(`${file}:${line('tasks', i, 'after', j)}: ${bt.key}.after: a task cannot wait on itself`);
      else if (!byKey.has(k)) problems.push(`${file}:${line('tasks', i, 'after', j)}: ${bt.key}.after: unknown key '${k}' (the keys in this file: ${[...byKey.keys()].join(', ')})`);
    });
  });
  if (problems.length) fail(problems);
  const cycle = findCycle(out, byKey);
  if (cycle) fail([`${file}:${byKey.get(cycle[0]!)!.line}: the tasks form a cycle: ${cycle.join(' -> ')}`]);
  return topoOrder(out, byKey);
}

/** A cycle as a list of keys (first repeated at the end), or undefined. */
function findCycle(tasks: BatchTask[], byKey: Map<string, BatchTask>): string[] | undefined {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (k: string): string[] | undefined => {
    state.set(k, 1);
    stack.push(k);
    for (const d of byKey.get(k)!.after) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!state.has(d)) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(k, 2);
    return undefined;
  };
  for (const t of tasks) {
    if (state.has(t.key)) continue;
    const c = visit(t.key);
    if (c) return c;
  }
  return undefined;
}

/** Dependencies before dependents, otherwise in file order. */
function topoOrder(tasks: BatchTask[], byKey: Map<string, BatchTask>): BatchTask[] {
  const done = new Set<string>();
  const out: BatchTask[] = [];
  const visit = (t: BatchTask) => {
    if (done.has(t.key)) return;
    done.add(t.key);
    for (const d of t.after) visit(byKey.get(d)!);
    out.push(t);
  };
  tasks.forEach(visit);
  return out;
}

/** Checks every task against the engine, then writes and queues them all (or none). */
export async function startBatch(engine: Engine, tasks: BatchTask[], file: string): Promise<BatchResult> {
  const prepared = new Map<string, PreparedTask>();
  const problems: string[] = [];
  for (const t of tasks) {
    try {
      prepared.set(t.key, await engine.prepareTask(t.params));
    } catch (err) {
      problems.push(`${file}:${t.line}: ${t.key}: ${(err as Error).message}`);
    }
  }
  if (problems.length) fail(problems);
  const ids = new Map<string, string>();
  for (const t of tasks) ids.set(t.key, await engine.store.tasks.newTaskId(new Date()));
  // All or nothing, a kill -9 included: the store writes the whole batch or, after a crash
  // part way, the next start finds none of it (store.createTasks). Nothing is queued before.
  const written = await engine.store.tasks.createTasks(
    tasks.map((t) => {
      const deps = t.after.length ? { after: t.after.map((k) => ids.get(k)!), waiting_on: t.after.map((k) => ids.get(k)!) } : undefined;
      const p = prepared.get(t.key)!;
      return { task: newTaskRecord(p, ids.get(t.key)!, deps), environment: p.environment };
    }),
  );
  const byId = new Map(written.map((w) => [w.id, w]));
  const result: BatchResult = { tasks: tasks.map((t) => ({ key: t.key, task: byId.get(ids.get(t.key)!)! })) };
  for (const r of result.tasks) engine.launchTask(r.task);
  return result;
}
