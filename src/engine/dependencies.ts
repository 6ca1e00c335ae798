// Dependencies between tasks (DESIGN §13). A task started `--after A,B` is created `pending`
// with `after: [A, B]` and `waiting_on: [the ones not completed yet]`; the scheduler never
// runs a task whose `waiting_on` is not empty.
//
// The protocol, in the order things happen:
//   1. a dependency reaches a terminal status (or is deleted) -> every task waiting on it is
//      evaluated again;
//   2. evaluating a waiting task reads the status of each dependency it still waits on:
//        completed            -> dropped from waiting_on;
//        abandoned / rejected -> the task is abandoned, the reason names the dependency;
//        gone (deleted)       -> the same, "no longer exists";
//        anything else        -> still waited on (a failed dependency can still be resumed);
//      the result is checkpointed under the task's lock, and a task left with nothing to wait
//      on is handed to the scheduler;
//   3. on start, recovery hands every pending task to the engine, which evaluates the
//      waiting ones the same way: a crash between a dependency completing and its
//      dependents' checkpoints loses nothing, the evaluation just happens at the next start.
// Evaluations of one task are serialised, so two dependencies finishing together never
// race on one dependent.
import type { Logger } from 'pino';
import { AtlasError, isAtlasError } from '../errors.js';
import type { TaskRecord, TaskStatus } from '../store/records.js';
import { faultPoint } from '../util/fault.js';
import { transition } from './transitions.js';

/** At most this many dependencies per task. */
export const MAX_DEPENDENCIES = 100;

export interface DependencyHooks {
  /** A task's status, or undefined when it does not exist. */
  statusOf(id: string): Promise<TaskStatus | undefined>;
  /** Changes a task under its lock, logging and announcing the change. */
  update(id: string, mutate: (t: TaskRecord) => void): Promise<TaskRecord>;
  /** Hands a task with nothing left to wait on to the scheduler. */
  release(task: TaskRecord): void;
  log: Logger | undefined;
}

export interface Verdict {
  /** The dependencies still to wait for. */
  remaining: string[];
  /** Set when the task can never run: names the dependency. */
  abandon?: string;
}

/** What a waiting task should become, given its dependencies' statuses. */
export function judge(waitingOn: readonly string[], statuses: ReadonlyMap<string, TaskStatus | undefined>): Verdict {
  const remaining: string[] = [];
  for (const dep of waitingOn) {
    const st = statuses.get(dep);
    if (st === undefined) return { remaining, abandon: `dependency ${dep} no longer exists` };
    if (st === 'abandoned' || st === 'rejected') return { remaining, abandon: `dependency ${dep} ended ${st}` };
    if (st !== 'completed') remaining.push(dep);
  }
  return { remaining };
}

/** Checks the ids given with --after: known, not ended for good, no duplicates. Returns them deduplicated. */
export async function checkDependencies(after: readonly string[], statusOf: (id: string) => Promise<TaskStatus | undefined>): Promise<{ after: string[]; waiting_on: string[] }> {
  const ids = [...new Set(after)];
  if (ids.length > MAX_DEPENDENCIES) throw new AtlasError('invalid_input', `a task may wait on at most ${MAX_DEPENDENCIES} tasks (got ${ids.length})`);
  const waiting: string[] = [];
  for (const id of ids) {
    const st = await statusOf(id);
    if (st === undefined) throw new AtlasError('not_found', `--after: no task ${id}; 'atlas list' shows the tasks there are`, { details: { id } });
    if (st === 'abandoned' || st === 'rejected') {
      throw new AtlasError('invalid_input', `--after: task ${id} ended ${st}, so a task after it could never run`, { details: { id, status: st } });
    }
    if (st !== 'completed') waiting.push(id);
  }
  return { after: ids, waiting_on: waiting };
}

export class Dependencies {
  /** dependency id -> ids of tasks waiting on it. */
  private readonly dependents = new Map<string, Set<string>>();
  /** waiting task id -> the dependencies it was registered under. */
  private readonly registered = new Map<string, string[]>();
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly hooks: DependencyHooks) {}

  /** Number of tasks known to wait on another. */
  get waiting(): number {
    return this.registered.size;
  }

  /** Ids of the tasks waiting on `id`. */
  dependentsOf(id: string): string[] {
    return [...(this.dependents.get(id) ?? [])];
  }

  /** Remembers a waiting task and evaluates it (its dependencies may have finished already). */
  watch(task: TaskRecord): void {
    this.register(task.id, task.waiting_on ?? []);
    this.evaluate(task.id);
  }

  /** Called for every checkpoint the engine announces. */
  changed(task: TaskRecord): void {
    const waiting = task.status === 'pending' && (task.waiting_on?.length ?? 0) > 0;
    if (!waiting) this.unregister(task.id);
    else this.register(task.id, task.waiting_on!);
    if (task.status === 'completed' || task.status === 'abandoned' || task.status === 'rejected') {
      // Crash tests stop here: the dependency's end is on disk, its dependents not yet released.
      if (this.dependents.has(task.id)) faultPoint('dependency.before_release');
      this.settled(task.id);
    }
  }

  /** A task ended for good or was deleted: its dependents are evaluated again. */
  settled(id: string): void {
    for (const dependent of this.dependentsOf(id)) this.evaluate(dependent);
  }

  /** Evaluates one waiting task, after any evaluation of it already under way. */
  evaluate(id: string): Promise<void> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(() => this.evaluateNow(id));
    this.chains.set(id, next);
    void next.finally(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
    return next;
  }

  /** Resolves once every evaluation started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.chains.size) await Promise.all([...this.chains.values()]);
  }

  private async evaluateNow(id: string): Promise<void> {
    try {
      const deps = this.registered.get(id);
      if (!deps) return;
      const statuses = new Map<string, TaskStatus | undefined>();
      for (const dep of deps) statuses.set(dep, await this.hooks.statusOf(dep));
      let released = false;
      const task = await this.hooks.update(id, (t) => {
        released = false;
        if (t.status !== 'pending' || !t.waiting_on?.length) return;
        const verdict = judge(t.waiting_on, statuses);
        if (verdict.abandon) {
          t.waiting_on = verdict.remaining;
          t.error = verdict.abandon;
          transition(t, 'abandoned', verdict.abandon);
          return;
        }
        if (verdict.remaining.length === t.waiting_on.length) throw NO_CHANGE;
        t.waiting_on = verdict.remaining;
        t.updated_at = new Date().toISOString();
        released = verdict.remaining.length === 0;
      });
      if (released) {
        this.hooks.log?.info({ task: id }, `task ${id}: every dependency completed; queued`);
        this.hooks.release(task);
      }
    } catch (err) {
      if (err === NO_CHANGE) return;
      if (isAtlasError(err, 'not_found')) {
        this.unregister(id);
        return;
      }
      this.hooks.log?.warn({ task: id, err: (err as Error).message }, `task ${id}: could not evaluate its dependencies: ${(err as Error).message}`);
    }
  }

  private register(id: string, deps: readonly string[]): void {
    const before = this.registered.get(id);
    if (before && before.length === deps.length && before.every((d, i) => d === deps[i])) return;
    this.unregister(id);
    this.registered.set(id, [...deps]);
    for (const d of deps) {
      let set = this.dependents.get(d);
      if (!set) this.dependents.set(d, (set = new Set()));
      set.add(id);
    }
  }

  private unregister(id: string): void {
    const deps = this.registered.get(id);
    if (!deps) return;
    this.registered.delete(id);
    for (const d of deps) {
      const set = this.dependents.get(d);
      set?.delete(id);
      if (set?.size === 0) this.dependents.delete(d);
    }
  }
}

/** Thrown inside an update to leave the task unwritten (nothing changed). */
const NO_CHANGE = new Error('no change');
