// task.log: one JSON object per line, written with pino through a synchronous destination,
// so a record is in the kernel the moment the call returns (a SIGKILL cannot lose it) and a
// write error (a full disk) is thrown to the caller instead of vanishing in an event.
// `sync()` makes the log durable; the engine calls it at step boundaries, before a step
// counts as finished.
//
// Framing: a record is complete when its line ends in '\n' and parses. A writer that finds
// the file not ending in '\n' (a torn record from a killed writer) starts a new line first,
// so a torn record never swallows the next one; readers skip torn and garbage lines.
//
// Open files are bounded: a log idle for a few seconds is closed, and at most
// `maxOpen` logs are open at once (least recently used closed first). A log with records not
// yet synced is synced as it closes; if that sync fails, the next `sync()` of the file syncs
// it by path (or throws). A log is never closed under a `sync()` in flight: its descriptor
// could be reused by the next open file, and the fdatasync would then sync the wrong one.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import readline from 'node:readline';
import { pino, type Logger } from 'pino';
import { errnoCode, storageError } from '../errors.js';
import { FILE_MODE } from './atomic.js';

export interface LogRecord {
  level?: string;
  time?: string;
  event: string;
  [key: string]: unknown;
}

interface OpenLog {
  file: string;
  fd: number;
  logger: Logger;
  lastUsed: number;
  /** Records appended, and how many of them a finished fdatasync covers. */
  appended: number;
  synced: number;
  /** fdatasyncs in flight; the descriptor is closed only once they are done. */
  syncing: number;
  /** Closed while a sync was in flight: the last sync closes the descriptor. */
  closing: boolean;
}

class FdDestination {
  constructor(private readonly fd: number) {}
  write(line: string): void {
    const buf = Buffer.from(line, 'utf8');
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
  }
}

export interface TaskLogOptions {
  maxOpen?: number;
  idleMs?: number;
}

export class TaskLogs {
  private readonly open = new Map<string, OpenLog>();
  private readonly maxOpen: number;
  private readonly idleMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Files closed with records whose sync failed: the next sync() must make them durable. */
  private readonly unsynced = new Set<string>();

  constructor(options: TaskLogOptions = {}) {
    this.maxOpen = options.maxOpen ?? 128;
    this.idleMs = options.idleMs ?? 3_000;
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Appends one record. Throws a storage error if it cannot be written. */
  append(file: string, record: LogRecord): void {
    const log = this.get(file);
    const { event, level, time: _time, ...rest } = record;
    try {
      if (level === 'warn') log.logger.warn({ event, ...rest });
      else if (level === 'error') log.logger.error({ event, ...rest });
      else log.logger.info({ event, ...rest });
    } catch (err) {
      this.closeLog(log);
      throw storageError('append to', file, err);
    }
    log.appended++;
  }

  /** Makes every record appended so far durable. */
  async sync(file: string): Promise<void> {
    if (this.unsynced.has(file)) await this.syncByPath(file);
    const log = this.open.get(file);
    if (!log || log.synced >= log.appended) return;
    // Records appended while this sync runs are not covered by it.
    const covers = log.appended;
    log.syncing++;
    try {
      await new Promise<void>((resolve, reject) => {
        fs.fdatasync(log.fd, (err) => (err ? reject(storageError('sync', file, err)) : resolve()));
      });
      log.synced = Math.max(log.synced, covers);
    } finally {
      log.syncing--;
      if (log.closing && log.syncing === 0) this.finalClose(log);
    }
  }

  /** Syncs a file that is not open (its close-time sync failed). */
  private async syncByPath(file: string): Promise<void> {
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(file, 'r');
      await fh.datasync();
      this.unsynced.delete(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') this.unsynced.delete(file);
      else throw storageError('sync', file, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  close(file: string): void {
    const log = this.open.get(file);
    if (log) this.closeLog(log);
  }

  closeAll(): void {
    for (const log of [...this.open.values()]) this.closeLog(log);
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private get(file: string): OpenLog {
    let log = this.open.get(file);
    if (log) {
      log.lastUsed = Date.now();
      // Re-insert to keep the map in least-recently-used order.
      this.open.delete(file);
      this.open.set(file, log);
      return log;
    }
    while (this.open.size >= this.maxOpen) {
      const oldest = this.open.values().next().value as OpenLog | undefined;
      if (!oldest) break;
      this.closeLog(oldest);
    }
    let fd: number;
    try {
      fd = fs.openSync(file, 'a+', FILE_MODE);
      const size = fs.fstatSync(fd).size;
      if (size > 0) {
        const last = Buffer.alloc(1);
        fs.readSync(fd, last, 0, 1, size - 1);
        if (last[0] !== 0x0a) fs.writeSync(fd, '\n');
      }
    } catch (err) {
      throw storageError('open', file, err);
    }
    const logger = pino(
      {
        base: null,
        messageKey: 'msg',
        timestamp: () => `,"time":"${new Date().toISOString()}"`,
        formatters: { level: (label) => ({ level: label }) },
      },
      new FdDestination(fd),
    );
    log = { file, fd, logger, lastUsed: Date.now(), appended: 0, synced: 0, syncing: 0, closing: false };
    this.open.set(file, log);
    this.armIdleTimer();
    return log;
  }

  private closeLog(log: OpenLog): void {
    if (this.open.get(log.file) === log) this.open.delete(log.file);
    if (log.syncing > 0) {
      log.closing = true;
      return;
    }
    this.finalClose(log);
  }

  private finalClose(log: OpenLog): void {
    log.closing = false;
    if (log.synced < log.appended) {
      try {
        fs.fdatasyncSync(log.fd);
        log.synced = log.appended;
      } catch {
        // A failing disk: the records are in the kernel; the next sync() of this file retries.
        this.unsynced.add(log.file);
      }
    }
    try {
      fs.closeSync(log.fd);
    } catch {
      // already closed
    }
  }

  private armIdleTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const cutoff = Date.now() - this.idleMs;
      for (const log of [...this.open.values()]) {
        if (log.lastUsed < cutoff) this.closeLog(log);
      }
      if (this.open.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, Math.max(250, Math.floor(this.idleMs / 2)));
    this.timer.unref();
  }
}

export interface ReadLogResult {
  records: LogRecord[];
  /** Lines that were not complete records (torn or garbage), by line number. */
  skipped: number[];
}

/** Reads a task log, skipping torn and garbage lines. A missing file reads as empty. */
export async function readLog(file: string, filter?: (r: LogRecord) => boolean): Promise<ReadLogResult> {
  const records: LogRecord[] = [];
  const skipped: number[] = [];
  let stream: fs.ReadStream;
  try {
    await fsp.access(file);
    stream = fs.createReadStream(file, { encoding: 'utf8' });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { records, skipped };
    throw storageError('read', file, err);
  }
  // readline drops the final newline, so we learn whether the last line was complete from the size.
  const st = await fsp.stat(file);
  const endsWithNewline = st.size === 0 || (await lastByte(file, st.size)) === 0x0a;
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  const all: string[] = [];
  for await (const line of lines) all.push(line);
  all.forEach((line, i) => {
    const lineNo = i + 1;
    if (line.length === 0) return;
    if (i === all.length - 1 && !endsWithNewline) {
      skipped.push(lineNo);
      return;
    }
    const rec = parseRecord(line);
    if (!rec) skipped.push(lineNo);
    else if (!filter || filter(rec)) records.push(rec);
  });
  return { records, skipped };
}

/** The same as readLog, read in one synchronous call: no append can interleave with it. */
export function readLogSync(file: string, filter?: (r: LogRecord) => boolean): ReadLogResult {
  const records: LogRecord[] = [];
  const skipped: number[] = [];
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { records, skipped };
    throw storageError('read', file, err);
  }
  const lines = text.split('\n');
  // The piece after the last '\n' is a torn record (or empty when the file ends cleanly).
  lines.forEach((line, i) => {
    if (line.length === 0) return;
    if (i === lines.length - 1) {
      skipped.push(i + 1);
      return;
    }
    const rec = parseRecord(line);
    if (!rec) skipped.push(i + 1);
    else if (!filter || filter(rec)) records.push(rec);
  });
  return { records, skipped };
}

export function parseRecord(line: string): LogRecord | undefined {
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as LogRecord).event === 'string') return v as LogRecord;
  } catch {
    // fall through
  }
  return undefined;
}

async function lastByte(file: string, size: number): Promise<number | undefined> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(1);
    await fh.read(buf, 0, 1, size - 1);
    return buf[0];
  } finally {
    await fh.close();
  }
}
