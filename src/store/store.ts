// The store interface: everything atlas keeps (tasks, step results, logs, artifacts,
// workspaces, the task index) behind one set of types, so the engine and the daemon never
// know which backend holds it. The filesystem store (fs-store.ts) is the default; a
// PostgreSQL store implements the same contract. Both pass one conformance suite
// (test/store/conformance/).
//
// The contract every backend keeps:
//   - a task is written whole, at revision + 1; a writer holding an older revision than the
//     stored one gets `conflict`, never a silent overwrite;
//   - `checkpoint` is durable when it returns (unless `durable: false`), and so is every log
//     record appended before a `syncLog` that has returned;
//   - versioned artifacts never overwrite each other: two writers racing for the next number
//     each get their own;
//   - log records of a task read back in the order they were appended;
//   - ids are unique across the whole store.
// New kinds of record (events, labels, schedules) are added as new members here, each with
// its own conformance file.
import type { EventStore, EventStoreOptions } from '../events/event-log.js';
import type { HomePaths } from './paths.js';
import type { TaskRecord, TaskStatus, TaskSummary, WorkspaceRecord } from './records.js';
import type { RepairResult } from './repair.js';
import type { LogPage, LogPageOptions } from './log-reader.js';
import type { LogRecord, ReadLogResult } from './task-log.js';
import type { IndexScan } from './task-index.js';
import type { QueryPage, TaskQuery } from './task-query.js';
import type { StoreSchedules } from './schedules.js';
import type { StoreMemory } from './memory.js';
import type { TaskArchives } from './archive-format.js';

export type { LogRecord, ReadLogResult, IndexScan, RepairResult, LogPage, LogPageOptions, QueryPage, TaskQuery };

export interface TaskFilter {
  workspace?: string;
  status?: TaskStatus | TaskStatus[];
  template?: string;
  limit?: number;
}

export type Warn = (message: string, details?: Record<string, unknown>) => void;

export interface ReadResult {
  task: TaskRecord;
  /** 'backup' when the latest checkpoint was unreadable and the previous one was used instead. */
  source: 'primary' | 'backup';
}

/** A task to create, with the caller's captured environment (kept apart: secret). */
export interface NewTask {
  task: TaskRecord;
  environment?: Record<string, string> | undefined;
}

/** Tasks: ids, reading, writing with revision checks, leases, listing, deleting. */
export interface StoreTasks {
  /** A new task id, `task-YYYYMMDD-HHMMSS` (UTC), with a suffix when that id is taken. */
  newTaskId(now?: Date): Promise<string>;
  /** The workspace that holds task `id`, or undefined. */
  locate(id: string): Promise<string | undefined>;
  /** Names of the workspaces that hold tasks (a removed workspace's tasks may remain). */
  workspaceNames(): Promise<string[]>;
  getTask(id: string): Promise<TaskRecord>;
  readTask(id: string): Promise<ReadResult>;
  readTaskAt(workspace: string, id: string): Promise<ReadResult>;
  /** Writes a brand-new task at revision 1; `already_exists` when the id is taken.
   *  `environment`: the caller's captured environment, kept apart from the record (secret). */
  createTask(task: TaskRecord, options?: { environment?: Record<string, string> }): Promise<TaskRecord>;
  /** Writes several brand-new tasks all or nothing, a crash included (a batch): after a crash
   *  part way, the next start finds none of them. */
  createTasks(entries: NewTask[]): Promise<TaskRecord[]>;
  /** The environment captured when the task was started, or undefined when none was. */
  readEnvironment(id: string): Promise<Record<string, string> | undefined>;
  /** Writes `task` at revision + 1 (`task.revision` must be the stored one, else `conflict`). */
  checkpoint(task: TaskRecord, options?: { durable?: boolean }): Promise<void>;
  /** Read-modify-write: `mutate` changes the current record in place. */
  updateTask(id: string, mutate: (task: TaskRecord) => void | Promise<void>): Promise<TaskRecord>;
  /** Holds the right to run the task until `releaseLease` (`locked` when another holder has it). */
  acquireLease(id: string, options?: { waitMs?: number }): Promise<void>;
  releaseLease(id: string): Promise<void>;
  releaseAllLeases(): Promise<void>;
  /** Task ids of one workspace (or all), newest first. */
  listTaskIds(workspace?: string): Promise<Array<{ id: string; workspace: string }>>;
  /** Whole tasks, newest first; unreadable ones are skipped with a warning. */
  listTasks(filter?: TaskFilter): Promise<TaskRecord[]>;
  deleteTask(id: string): Promise<void>;
  /** Cleans what dead writers left around a task; returns what was removed. */
  sweep(workspace: string, id: string): Promise<string[]>;
  /** An opaque token for the version of the task this process last wrote (for the index). */
  writtenSignature(id: string): string | undefined;
  isTerminal(task: TaskRecord): boolean;
}

export interface StoreWorkspaces {
  create(input: Omit<WorkspaceRecord, 'schema_version' | 'created_at'>): Promise<WorkspaceRecord>;
  get(name: string): Promise<WorkspaceRecord>;
  list(): Promise<WorkspaceRecord[]>;
  /** Removes the workspace record; with `purge`, its task history too. */
  remove(name: string, purge: boolean): Promise<void>;
}

export interface ArtifactInfo {
  name: string;
  size: number;
  modified_at: string;
}

/** An artifact written as it streams (a step's output): synchronous appends, one durable finish. */
export interface ArtifactStream {
  /** The artifact's name, once the first byte made it exist. */
  readonly name: string | undefined;
  /** Appends text; throws a storage error if it cannot. */
  write(text: string): void;
  /** Makes the artifact durable and closes it; returns its name, if anything was written. */
  finish(): Promise<string | undefined>;
  /** Closes without waiting for durability (after a failure). */
  close(): void;
}

/** One task's artifacts. */
export interface StoreArtifacts {
  /** Saves (or replaces) an artifact under a fixed name. */
  save(name: string, data: string | Uint8Array): Promise<string>;
  /** Saves `<base>.<n><ext>` with the next free n (1, 2, ...). Returns the name used. */
  saveVersioned(base: string, ext: string, data: string | Uint8Array): Promise<string>;
  /** A streamed artifact `<base>.<n><ext>`, n the first free number from `from`, made on the first write;
   *  with `append`, `<base>.<from><ext>` is continued if it exists (a re-attached attempt). */
  openStream(base: string, ext: string, from: number, options?: { append?: boolean }): ArtifactStream;
  get(name: string): Promise<Buffer>;
  /** Artifacts sorted by name (numbers in names compare as numbers). */
  list(): Promise<ArtifactInfo[]>;
}

/** Task summaries for listing and counting without reading every task. */
export interface StoreIndex {
  readonly size: number;
  /** Loads what the backend keeps and reconciles it (at start). */
  load(): Promise<IndexScan>;
  /** Persists whatever makes the next load cheap. */
  save(): Promise<void>;
  /** Records a task as just written by this process (`sig`: from `writtenSignature`). */
  put(task: TaskRecord, sig?: string): void;
  remove(id: string, workspace: string): void;
  /** Ids whose task could not be read at the last load. */
  unreadableTasks(): Array<{ id: string; workspace: string; error: string }>;
  /** Summaries newest first. */
  list(filter?: TaskFilter): TaskSummary[];
  /** Summaries as load() left them, without checking each again (absent: list()). */
  loaded?(): TaskSummary[];
  /** One page of a query with its total (DESIGN §13), current without catchUp(); absent, the
   *  engine runs the query over list(). */
  query?(q: TaskQuery): QueryPage | Promise<QueryPage>;
  /** Picks up changes made behind this process's back; returns how many entries changed. */
  revalidateAll(): number;
  counts(): Record<string, number>;
  /** Brings the view up to date before a query (a no-op where queries are always current). */
  catchUp?(): Promise<void>;
}

/** Everything atlas keeps. */
export interface Store {
  /** Which backend this is. */
  readonly kind: 'fs' | 'postgres';
  /** The home: config, socket, templates, worktrees (and, for the fs store, the tasks). */
  readonly paths: HomePaths;
  readonly tasks: StoreTasks;
  readonly workspaces: StoreWorkspaces;
  /** Schedules and their fires (schedules.ts has the exactly-once contract). */
  readonly schedules: StoreSchedules;
  /** Workspace memory (memory.ts has the contract). */
  readonly memory: StoreMemory;
  init(): Promise<void>;
  close(): Promise<void>;
  artifacts(workspace: string, id: string): StoreArtifacts;
  /** The task index; one per engine. */
  openIndex(): StoreIndex;
  /** Archived tasks (archive-format.ts has the contract); one per daemon. */
  openArchive(): TaskArchives;
  /** The events log (src/events/event-log.ts has the contract); one per engine. A backend
   *  with transactions may write a checkpoint's events in the checkpoint's own transaction. */
  openEvents(options?: EventStoreOptions): EventStore;
  /** Appends one log record; it is in the store (not yet durable) when the call returns. */
  appendLog(workspace: string, id: string, record: LogRecord): void;
  /** Makes every record appended so far durable. */
  syncLog(workspace: string, id: string): Promise<void>;
  /** Lets go of whatever the store holds open for a task's log. */
  closeLog(workspace: string, id: string): void;
  readLog(workspace: string, id: string, filter?: (r: LogRecord) => boolean): Promise<ReadLogResult>;
  /** Where the backend can read a log in one synchronous call (no append interleaves). */
  readLogSync?(workspace: string, id: string, filter?: (r: LogRecord) => boolean): ReadLogResult;
  /** One page of a task's log, in append order, from a position (0 is the start; `next` of a
   *  page is where the following one starts) up to an end position, at most `limit` records.
   *  Positions are the backend's own (byte offsets for files, sequence numbers elsewhere). */
  readLogPage(workspace: string, id: string, options: LogPageOptions): Promise<LogPage>;
  /** The position the next appended record will take, read synchronously: subscribing to
   *  live records and taking it in one synchronous stretch splits the log exactly into
   *  history (before) and live (after). A backend that cannot know it synchronously omits
   *  it; a follower of its logs may then see a record twice where history meets live. */
  logEnd?(workspace: string, id: string): number;
  /** Repairs a task whose latest checkpoint cannot be read (from a backup or its log), or quarantines it. */
  repairTask(workspace: string, id: string): Promise<RepairResult>;
}
