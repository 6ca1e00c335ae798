// Durable atomic file replacement: a complete temp file, fsync, rename over the target,
// then fsync of the directory so the rename itself survives a power cut.
//
// We do not use write-file-atomic here: 7.x issues one write() without checking how many
// bytes landed and never fsyncs the directory, so on a full disk it can swap a good file
// for a truncated one and report success. FileHandle.writeFile loops until every byte is
// written or throws, and we check the size before the rename as a second guard.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { pidAlive } from '../util/proc.js';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;
const TEMP_MARK = '.tmp-';
/** When this process started (wall clock, ms), less a second for clock granularity. */
const PROCESS_STARTED_MS = performance.timeOrigin - 1000;
let tempCounter = 0;

/** Fault points tests can arm to simulate a failure at an exact place in a write. */
export const faults: { beforeRename?: (file: string) => void; afterRename?: (file: string) => void } = {};

export function tempPathFor(file: string): string {
  tempCounter = (tempCounter + 1) % 1_000_000_000;
  return `${file}${TEMP_MARK}${process.pid}-${tempCounter}`;
}

export function isTempFile(name: string): boolean {
  return name.includes(TEMP_MARK);
}

/** The pid that wrote a temp file, from its name. */
export function tempFileOwner(name: string): number | undefined {
  const m = /\.tmp-(\d+)-\d+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export async function fsyncDir(dir: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    await fsyncFd(fd);
  } catch (err) {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'EISDIR') throw storageError('sync directory', dir, err);
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

/** fsync on the thread pool: the only slow call of a checkpoint. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

export interface DurableWriteOptions {
  /** Keep the file being replaced as this path (a hard link, so no data is copied). */
  backup?: string;
  mode?: number;
  /** Skip the directory fsync (callers that sync the directory themselves). */
  skipDirSync?: boolean;
  /**
   * false: atomic but not synced (no fsync of file or directory). Survives the writer's
   * crash (the kernel has the data) but not a power cut; the previous durable version stays
   * reachable through `backup` and the log. Default true.
   */
  durable?: boolean;
}

/** Writes `data` to `file` so that after it resolves the new content is durable, and at
 *  any moment before that the old content is intact. Throws a storage error otherwise.
 *  Resolves to the file's stats as this call left it, read right after its rename, or
 *  undefined when another writer replaced the file at once: a caller that recognises its own
 *  writes by their stats must never take someone else's file for its own. */
export async function writeFileDurable(file: string, data: string | Uint8Array | readonly Uint8Array[], options: DurableWriteOptions = {}): Promise<fs.Stats | undefined> {
  const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  const tmp = tempPathFor(file);
  let written: fs.Stats | undefined;
  // Metadata calls (open, write of a few KiB, rename, link) take microseconds on a local
  // disk, so they run inline; only the fsyncs, which wait for the device, go to the pool.
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', options.mode ?? FILE_MODE);
    // Every byte is accounted for: a short write is retried, and a write that makes no
    // progress is an error, never a silently truncated file.
    writeAll(fd, parts, tmp);
    if (options.durable !== false) await fsyncFd(fd);
    const ino = fs.fstatSync(fd).ino;
    fs.closeSync(fd);
    fd = undefined;
    if (options.backup) await replaceBackup(file, options.backup);
    faults.beforeRename?.(file);
    fs.renameSync(tmp, file);
    faults.afterRename?.(file);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    written = st?.ino === ino ? st : undefined;
  } catch (err) {
    if (fd !== undefined) closeQuietly(fd);
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created, or already gone
    }
    throw storageError('write', file, err);
  }
  if (!options.skipDirSync && options.durable !== false) await fsyncDir(path.dirname(file));
  return written;
}

/** Writes every byte of `parts` in order (one writev for many pieces), retrying short writes. */
function writeAll(fd: number, parts: readonly Uint8Array[], file: string): void {
  const total = parts.reduce((n, p) => n + p.length, 0);
  let written = 0;
  let rest: Uint8Array[] = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    const n = rest.length === 1 ? fs.writeSync(fd, rest[0]!) : fs.writevSync(fd, rest);
    if (n <= 0) throw new AtlasError('storage', `short write to ${file}: ${written} of ${total} bytes (is the disk full?)`, { retryable: true });
    written += n;
    // Drop what landed; a piece written in part goes on from where it stopped.
    let skip = n;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = rest.slice(i);
    if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

async function replaceBackup(file: string, backup: string): Promise<void> {
  // Unlinking the old backup frees its blocks, which can take a while: off the main thread.
  await new Promise<void>((resolve, reject) => fs.unlink(backup, (err) => (err && err.code !== 'ENOENT' ? reject(err) : resolve())));
  try {
    fs.linkSync(file, backup);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

/** mkdir -p with mode 0700 that also fsyncs the parent of every directory it creates. */
export async function ensureDir(dir: string): Promise<void> {
  const created = await fsp.mkdir(dir, { recursive: true, mode: DIR_MODE }).catch((err: unknown) => {
    throw storageError('create directory', dir, err);
  });
  if (created === undefined) return;
  // `created` is the topmost new directory: sync the parent of each new level.
  const parents: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    parents.push(path.dirname(d));
    if (d === path.resolve(created) || d === path.dirname(d)) break;
  }
  for (const p of parents) await fsyncDir(p);
}

/** Removes temp files in `dir` left by writers that are no longer alive. Returns their names. */
export async function sweepTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const name of names) {
    if (!isTempFile(name)) continue;
    const owner = tempFileOwner(name);
    const file = path.join(dir, name);
    if (owner === process.pid) {
      // Ours, or a dead predecessor's that had our pid (PID 1 in a container): a file made
      // before this process started is not ours.
      const st = await fsp.stat(file).catch(() => undefined);
      if (!st || st.mtimeMs >= PROCESS_STARTED_MS) continue;
    } else if (owner !== undefined && pidAlive(owner)) continue;
    await fsp.unlink(file).catch(() => undefined);
    swept.push(name);
  }
  return swept;
}
