// Creating tasks: a start request checked (workspace, template, inputs, labels) into a new
// task's record, written under a fresh id, then announced and handed to the scheduler (or to
// the dependency tracker). Batches (batch.ts) check every task first and write them after.
import fsp from 'node:fs/promises';
import { AtlasError, isAtlasError } from '../errors.js';
import { assertName, assertTaskId } from '../store/names.js';
import { SCHEMA_VERSION, type StepState, type TaskRecord } from '../store/records.js';
import { cleanEnvironment } from '../store/task-env.js';
import { loadTemplateFile } from '../templates/loader.js';
import type { Template } from '../templates/schema.js';
import { checkDependencies } from './dependencies.js';
import type { EngineCore } from './engine-core.js';
import { checkLabels } from './labels.js';
import { checkDurationInputs, newStepState, resolveInputs } from './new-task.js';
import { runsAnywhere } from './workspaces.js';

export interface StartParams {
  template: string;
  workspace: string;
  inputs?: Record<string, string>;
  description?: string;
  priority?: number;
  /** A template file to use instead of a template name (the name is then taken from the file). */
  template_file?: string;
  /** The environment the task's steps start from (the `atlas start` caller's); absent: the daemon's. */
  env?: Record<string, string>;
  /** Ids of tasks that must complete before this one runs (DESIGN §13). */
  after?: string[];
  /** Set by the schedule runner: the fire (`<schedule>@<slot>`) that creates this task. */
  schedule_fire?: string;
  /** User labels, `key=value` (DESIGN §13). */
  labels?: Record<string, string>;
}


/** A checked start request: the task's record without its id, and the caller's environment. */
export interface PreparedTask {
  task: TaskRecord;
  environment: Record<string, string> | undefined;
}

export async function startTask(engine: EngineCore, p: StartParams): Promise<TaskRecord> {
  const prepared = await prepareTask(engine, p);
  const deps = p.after?.length ? await checkDependencies(p.after.map((d) => assertTaskId(d)), (d) => engine.statusOf(d)) : undefined;
  for (let tries = 1; ; tries++) {
    try {
      const task = await writeTask(engine, prepared, await engine.store.tasks.newTaskId(new Date()), deps);
      launchTask(engine, task);
      return task;
    } catch (err) {
      // Another writer took the id between its choice and the write (another daemon on a
      // shared store, or a concurrent start): nothing was written, so take the next one.
      if (!isAtlasError(err, 'already_exists') || tries >= 10) throw err;
    }
  }
}

/** Checks a start request (workspace, template, inputs, labels) and builds the new task's
 *  record, without an id and without writing anything (batches check every task first). */
export async function prepareTask(engine: EngineCore, p: StartParams): Promise<PreparedTask> {
  engine.assertRunning();
  const workspace = await engine.store.workspaces.get(assertName('workspace', p.workspace));
  const template = p.template_file ? await loadTemplateFile(p.template_file) : await engine.templates.get(p.template);
  checkRunnable(engine, template);
  const inputs = resolveInputs(template, p.inputs ?? {});
  checkDurationInputs(template, inputs);
  const environment = p.env !== undefined ? cleanEnvironment(p.env) : undefined;
  const priority = p.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
    throw new AtlasError('invalid_input', `priority must be a whole number (got ${String(p.priority)})`);
  }
  // On a shared store a --repo workspace's directory is the copy of whichever daemon runs the
  // task, made when it claims it: the one recorded may be on another machine.
  if (!(engine.store.kind === 'postgres' && runsAnywhere(workspace))) {
    try {
      const st = await fsp.stat(workspace.path);
      if (!st.isDirectory()) throw new Error('not a directory');
    } catch {
      throw new AtlasError('invalid_input', `workspace ${workspace.name}'s directory ${workspace.path} does not exist; recreate the workspace`);
    }
  }
  const labels = checkLabels(p.labels);
  const at = new Date().toISOString();
  const task: TaskRecord = {
    schema_version: SCHEMA_VERSION,
    id: '',
    workspace: workspace.name,
    template: template.name,
    description: p.description ?? template.description,
    inputs,
    status: 'pending',
    current_step: 0,
    steps: template.steps.map((s) => newStepState(s as unknown as StepState['definition'])),
    step_results: [],
    transitions: [{ from_status: null, to_status: 'pending', timestamp: at, reason: 'created' }],
    priority,
    created_at: at,
    updated_at: at,
    completed_at: null,
    revision: 0,
    error: null,
    workdir: workspace.path,
    env: template.env,
    ...(labels ? { labels } : {}),
    ...(p.schedule_fire ? { schedule_fire: p.schedule_fire } : {}),
  };
  return { task, environment };
}

/** Writes a prepared task under `id`, waiting on `deps`; nothing runs it until launchTask. */
export async function writeTask(engine: EngineCore, prepared: PreparedTask, id: string, deps?: { after: string[]; waiting_on: string[] }): Promise<TaskRecord> {
  const task = newTaskRecord(prepared, id, deps);
  await engine.store.tasks.createTask(task, prepared.environment ? { environment: prepared.environment } : {});
  return task;
}

/** The record of a prepared task under `id`, created now, waiting on `deps` (nothing written). */
export function newTaskRecord(prepared: PreparedTask, id: string, deps?: { after: string[]; waiting_on: string[] }): TaskRecord {
  const at = new Date().toISOString();
  const task: TaskRecord = { ...prepared.task, id, created_at: at, updated_at: at, transitions: prepared.task.transitions.map((t) => ({ ...t, timestamp: at })) };
  if (deps) {
    task.after = deps.after;
    task.waiting_on = deps.waiting_on;
  }
  return task;
}

/** Announces a written task and hands it to the scheduler (or to the dependency tracker). */
export function launchTask(engine: EngineCore, task: TaskRecord): void {
  engine.events.record(task, { t: 0, r: 0 });
  engine.logCommitted(task.workspace, task.id, { event: 'task_created', task });
  engine.emitTask(task);
  engine.enqueue(task);
}

/** Refuses a template this engine cannot run to the end (for example no agent command). */
function checkRunnable(engine: EngineCore, template: Template): void {
  const needsAgent = template.steps.find((s) => s.type === 'ai' && s.command === undefined);
  if (needsAgent && !engine.config.ai_command) {
    throw new AtlasError(
      'invalid_input',
      `template ${template.name} has an ai step (${needsAgent.name}) but no agent command is configured: set 'ai.command' in ${engine.store.paths.config} (for example: ai: { command: "claude -p" })`,
      { details: { template: template.name, step: needsAgent.name, config_key: 'ai.command' } },
    );
  }
}
