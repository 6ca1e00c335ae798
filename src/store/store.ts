// The store: everything atlas keeps in a home, behind one object. Nothing here knows about
// the daemon or the engine; they write through this.
import fsp from 'node:fs/promises';
import { storageError } from '../errors.js';
import { ArtifactDir } from './artifacts.js';
import { DIR_MODE, ensureDir } from './atomic.js';
import { HomePaths } from './paths.js';
import { TaskLogs, readLog, readLogSync, type LogRecord, type ReadLogResult } from './task-log.js';
import { TaskStore, type Warn } from './task-store.js';
import { WorkspaceStore } from './workspace-store.js';

export interface StoreOptions {
  warn?: Warn;
  maxOpenLogs?: number;
}

export class Store {
  readonly paths: HomePaths;
  readonly tasks: TaskStore;
  readonly workspaces: WorkspaceStore;
  readonly logs: TaskLogs;

  constructor(home: string, options: StoreOptions = {}) {
    this.paths = new HomePaths(home);
    this.tasks = new TaskStore(this.paths, options.warn ? { warn: options.warn } : {});
    this.workspaces = new WorkspaceStore(this.paths);
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

  async close(): Promise<void> {
    await this.tasks.releaseAllLeases();
    this.logs.closeAll();
  }
}
