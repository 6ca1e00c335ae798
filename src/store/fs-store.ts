// The filesystem store (DESIGN §2): everything atlas keeps, as files under the home. The
// default backend of the Store interface (store.ts). Nothing here knows about the daemon or
// the engine; they write through the interface.
import fsp from 'node:fs/promises';
import { storageError } from '../errors.js';
import { TaskArchive } from './archive.js';
import { ArtifactDir } from './artifacts.js';
import { DIR_MODE, ensureDir } from './atomic.js';
import { FsEventLog, type EventStore, type EventStoreOptions } from '../events/event-log.js';
import { HomePaths } from './paths.js';
import { repairTask, type RepairResult } from './repair.js';
import type { Store, Warn } from './store.js';
import { TaskIndex } from './task-index.js';
import { logSizeSync, readLogPage, type LogPage, type LogPageOptions } from './log-reader.js';
import { TaskLogs, readLog, readLogSync, type LogRecord, type ReadLogResult } from './task-log.js';
import { TaskStore } from './task-store.js';
import { WorkspaceStore } from './workspace-store.js';
import { FsSchedules } from './schedule-store.js';
import { FsMemory } from './memory.js';

export interface StoreOptions {
  warn?: Warn;
  maxOpenLogs?: number;
}

export class FsStore implements Store {
  readonly kind = 'fs' as const;
  readonly paths: HomePaths;
  readonly tasks: TaskStore;
  readonly workspaces: WorkspaceStore;
  readonly logs: TaskLogs;
  readonly schedules: FsSchedules;
  readonly memory: FsMemory;

  constructor(home: string, options: StoreOptions = {}) {
    this.paths = new HomePaths(home);
    this.tasks = new TaskStore(this.paths, options.warn ? { warn: options.warn } : {});
    this.workspaces = new WorkspaceStore(this.paths);
    this.schedules = new FsSchedules(this.paths);
    this.memory = new FsMemory(this.paths);
    this.logs = new TaskLogs(options.maxOpenLogs !== undefined ? { maxOpen: options.maxOpenLogs } : {});
  }

  /** Creates the home (mode 0700) and its top-level directories. */
  async init(): Promise<void> {
    await ensureDir(this.paths.root);
    await fsp.chmod(this.paths.root, DIR_MODE).catch((err: unknown) => {
      throw storageError('set the mode of', this.paths.root, err);
    });
    await this.tasks.init();
  }

  artifacts(ws: string, id: string): ArtifactDir {
    return new ArtifactDir(this.paths.artifactsDir(ws, id));
  }

  openIndex(): TaskIndex {
    return new TaskIndex(this.paths);
  }

  openArchive(): TaskArchive {
    return new TaskArchive(this.paths);
  }

  openEvents(options: EventStoreOptions = {}): EventStore {
    return new FsEventLog(this.paths.eventsDir, options);
  }

  repairTask(ws: string, id: string): Promise<RepairResult> {
    return repairTask(this.paths, ws, id);
  }

  closeLog(ws: string, id: string): void {
    this.logs.close(this.paths.taskLog(ws, id));
  }

  appendLog(ws: string, id: string, record: LogRecord): void {
    this.logs.append(this.paths.taskLog(ws, id), record);
  }

  syncLog(ws: string, id: string): Promise<void> {
    return this.logs.sync(this.paths.taskLog(ws, id));
  }

  readLog(ws: string, id: string, filter?: (r: LogRecord) => boolean): Promise<ReadLogResult> {
    return readLog(this.paths.taskLog(ws, id), filter);
  }

  readLogSync(ws: string, id: string, filter?: (r: LogRecord) => boolean): ReadLogResult {
    return readLogSync(this.paths.taskLog(ws, id), filter);
  }

  readLogPage(ws: string, id: string, options: LogPageOptions): Promise<LogPage> {
    return readLogPage(this.paths.taskLog(ws, id), options);
  }

  logEnd(ws: string, id: string): number {
    return logSizeSync(this.paths.taskLog(ws, id));
  }

  async close(): Promise<void> {
    await this.tasks.releaseAllLeases();
    this.logs.closeAll();
  }
}
