// Several new tasks written all or nothing in the filesystem store (a batch, DESIGN §13).
//
// Files cannot be renamed into place together, so a journal stands in for a transaction:
//   1. batches/<first-id>.json lists every task of the batch (id, workspace), durably;
//   2. the tasks are written one by one;
//   3. the journal is removed (durably): from here on the batch exists.
// A journal found at the next start means a crash (or an error) came between 1 and 3: every
// task it lists that was written is deleted before anything reads or runs tasks, so a batch
// cut short leaves nothing behind. The engine queues a batch's tasks only after 3.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, storageError } from '../errors.js';
import { faultPoint } from '../util/fault.js';
import { ensureDir, fsyncDir, writeFileDurable } from './atomic.js';
import { isValidName, isValidTaskId } from './names.js';
import type { HomePaths } from './paths.js';
import type { TaskRecord } from './records.js';
import type { NewTask } from './store.js';

interface Journal {
  tasks: Array<{ id: string; workspace: string }>;
}

/** What the journal needs of the task store. */
export interface JournalTasks {
  createTask(task: TaskRecord, options?: { environment?: Record<string, string> }): Promise<TaskRecord>;
  locate(id: string): Promise<string | undefined>;
  deleteTask(id: string): Promise<void>;
}

function batchesDir(paths: HomePaths): string {
  return path.join(paths.root, 'batches');
}

export async function createAllOrNothing(paths: HomePaths, tasks: JournalTasks, entries: NewTask[]): Promise<TaskRecord[]> {
  const dir = batchesDir(paths);
  await ensureDir(dir);
  const file = path.join(dir, `${entries[0]!.task.id}.json`);
  const journal: Journal = { tasks: entries.map((e) => ({ id: e.task.id, workspace: e.task.workspace })) };
  await writeFileDurable(file, JSON.stringify(journal) + '\n');
  const written: TaskRecord[] = [];
  try {
    for (const e of entries) {
      written.push(await tasks.createTask(e.task, e.environment ? { environment: e.environment } : {}));
      faultPoint('batch.task_written');
    }
  } catch (err) {
    await rollBack(tasks, journal);
    await removeJournal(file);
    throw err;
  }
  await removeJournal(file);
  return written;
}

/** Deletes what every batch cut short left; returns the ids deleted. Runs before tasks are read. */
export async function rollBackBatches(paths: HomePaths, tasks: JournalTasks): Promise<string[]> {
  const dir = batchesDir(paths);
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).filter((n) => n.endsWith('.json'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw storageError('list', dir, err);
  }
  const deleted: string[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    let journal: Journal | undefined;
    try {
      journal = JSON.parse(await fsp.readFile(file, 'utf8')) as Journal;
    } catch {
      // Cut off while being written: no task of it was written yet.
      journal = undefined;
    }
    if (journal && Array.isArray(journal.tasks)) deleted.push(...(await rollBack(tasks, journal)));
    await removeJournal(file);
  }
  return deleted;
}

async function rollBack(tasks: JournalTasks, journal: Journal): Promise<string[]> {
  const deleted: string[] = [];
  for (const t of journal.tasks) {
    if (!isValidTaskId(t.id) || !isValidName(t.workspace)) continue;
    if ((await tasks.locate(t.id)) === undefined) continue;
    await tasks.deleteTask(t.id);
    deleted.push(t.id);
  }
  return deleted;
}

async function removeJournal(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw storageError('remove', file, err);
  }
  await fsyncDir(path.dirname(file));
}
