// Archived tasks (DESIGN §14), whatever keeps them: the contract every backend's archive keeps
// (the filesystem's per-task files, archive.ts; the PostgreSQL store's archive table,
// pg/pg-archive.ts) and the one format of an archived task, a checksummed tar.gz (tgz.ts)
// holding task.json, task.json.bak, env.json, task.log and artifacts/<name>.
//
// The contract: a task is always exactly one of live or archived, whatever kills the daemon;
// show, logs and artifacts read an archived task whole; unarchive brings it back as it was.
import { Readable } from 'node:stream';
import { AtlasError } from '../errors.js';
import type { TaskRecord, TaskSummary } from './records.js';
import { decodeTask } from './task-codec.js';
import { readTgz, TgzWriter, type Manifest, type TgzEntry } from './tgz.js';

export const ARCHIVE_FORMAT = 'atlas-task-archive';

export interface ArchivedSummary extends TaskSummary {
  archived_at: string;
  archive_bytes: number;
}

/** An archived task, read whole: its checkpoint, log and artifacts. */
export interface ArchivedTask {
  task: TaskRecord;
  summary: ArchivedSummary;
  log: Buffer;
  artifacts: Map<string, { data: Buffer; modified_at: string }>;
}

export interface ReconcileReport {
  archives_removed: string[];
  leftovers_removed: string[];
}

/** The archived tasks of one store. */
export interface TaskArchives {
  /** True when a move writes its task.archived / task.unarchived event itself (in its own
   *  transaction); else the caller records it. */
  readonly writesEvents: boolean;
  /** Finishes or undoes moves a crash cut off (at the daemon's start). */
  reconcile(): Promise<ReconcileReport>;
  has(id: string): Promise<boolean>;
  /** Reads an archived task whole, checking every checksum (`not_found` when not archived). */
  read(id: string): Promise<ArchivedTask>;
  /** Every archived task's summary (any order). */
  list(): Promise<ArchivedSummary[]>;
  /** Archives task `id` if `accept`, shown the current record under the backend's lock on
   *  the task, agrees; returns the archived summary, or undefined when refused. */
  archiveIf(workspace: string, id: string, accept: (task: TaskRecord) => boolean): Promise<ArchivedSummary | undefined>;
  /** Brings an archived task back among the live ones. */
  unarchive(id: string): Promise<TaskRecord>;
}

export interface ArchiveEntry {
  name: string;
  data: Buffer;
  mtime?: Date;
}

/** Packs entries into an archive in memory. */
export async function packArchive(entries: readonly ArchiveEntry[], about: Record<string, unknown>): Promise<Buffer> {
  const writer = new TgzWriter(ARCHIVE_FORMAT);
  const chunks: Buffer[] = [];
  writer.output.on('data', (c: Buffer) => chunks.push(c));
  for (const e of entries) await writer.add(e.name, e.data, e.mtime ? { mtime: e.mtime } : {});
  await writer.finish(about);
  return Buffer.concat(chunks);
}

/** Unpacks an archive whole, checking every checksum; `where` names it in errors. */
export async function unpackArchive(source: Readable | Buffer, where: string, id: string): Promise<{ task: TaskRecord; log: Buffer; artifacts: ArchivedTask['artifacts']; entries: Map<string, TgzEntry>; manifest: Manifest }> {
  let task: TaskRecord | undefined;
  let log: Buffer = Buffer.alloc(0);
  const artifacts: ArchivedTask['artifacts'] = new Map();
  const entries = new Map<string, TgzEntry>();
  const stream = Buffer.isBuffer(source) ? Readable.from([source]) : source;
  const manifest = await readTgz(stream, where, ARCHIVE_FORMAT, (e) => {
    entries.set(e.name, e);
    if (e.name === 'task.json') task = decodeTask(e.data.toString('utf8'), `${where}:task.json`);
    else if (e.name === 'task.log') log = e.data;
    else if (e.name.startsWith('artifacts/')) artifacts.set(e.name.slice('artifacts/'.length), { data: e.data, modified_at: (e.mtime ?? new Date()).toISOString() });
  });
  if (!task) throw new AtlasError('corrupt', `the archive of ${id} (${where}) holds no task.json`, { details: { id, where } });
  return { task, log, artifacts, entries, manifest };
}

export function notArchived(id: string): AtlasError {
  return new AtlasError('not_found', `task ${id} is not archived; 'atlas list --archived' shows the archived tasks`, { details: { id } });
}
