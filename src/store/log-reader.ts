// Reading a task log a page at a time: from a byte offset, up to an end offset, at most a
// number of records, in chunks, without blocking the event loop for long and without holding
// more of the log in memory than one chunk and one page. `tail` keeps only the last N
// records of the range (a ring of N), so even a tail of a huge log reads in bounded memory.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { errnoCode, storageError } from '../errors.js';
import { parseRecord, type LogRecord } from './task-log.js';

const CHUNK = 256 * 1024;
/** The most records one page holds. */
export const LOG_PAGE_RECORDS = 5000;

export interface LogPageOptions {
  /** Byte offset to start at (the start of a line: 0 or a previous page's `next`). */
  start?: number;
  /** Byte offset to stop at (exclusive); default: the file's size when the read starts. */
  end?: number;
  /** At most this many records (default and maximum LOG_PAGE_RECORDS). */
  limit?: number;
  /** Only the last N matching records of the range (the whole range is scanned). */
  tail?: number;
  filter?: (r: LogRecord) => boolean;
}

export interface LogPage {
  records: LogRecord[];
  /** Lines that were not complete records (torn or garbage). */
  skipped: number;
  /** Byte offset just past the last line consumed: where the next page starts. */
  next: number;
  /** True when the range holds lines after `next`. */
  more: boolean;
}

/** Reads one page of `file`. A missing file reads as empty. */
export async function readLogPage(file: string, options: LogPageOptions = {}): Promise<LogPage> {
  const limit = Math.min(options.limit ?? LOG_PAGE_RECORDS, LOG_PAGE_RECORDS);
  const start = options.start ?? 0;
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { records: [], skipped: 0, next: start, more: false };
    throw storageError('read', file, err);
  }
  try {
    const end = options.end ?? (await fh.stat()).size;
    const records: LogRecord[] = [];
    let skipped = 0;
    let pos = start;
    let carry = Buffer.alloc(0);
    const buf = Buffer.alloc(CHUNK);
    const full = () => options.tail === undefined && records.length >= limit;
    while (pos + carry.length < end && !full()) {
      const want = Math.min(CHUNK, end - pos - carry.length);
      const { bytesRead } = await fh.read(buf, 0, want, pos + carry.length);
      if (bytesRead === 0) break;
      let data = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      let from = 0;
      for (let nl = data.indexOf(0x0a); nl !== -1 && !full(); nl = data.indexOf(0x0a, from)) {
        const line = data.toString('utf8', from, nl);
        pos += nl + 1 - from;
        from = nl + 1;
        if (line.length === 0) continue;
        const rec = parseRecord(line);
        if (!rec) skipped++;
        else if (!options.filter || options.filter(rec)) {
          records.push(rec);
          if (options.tail !== undefined && records.length > options.tail) records.shift();
        }
      }
      data = data.subarray(from);
      carry = Buffer.from(data);
    }
    // A piece without its newline at the very end of the range is a torn (or still being
    // written) record: not consumed, so a later page or a follower reads it once complete.
    return { records, skipped, next: pos, more: full() && pos < end };
  } finally {
    await fh.close();
  }
}

/** The log's current size in bytes (0 when missing): records appended later start at or
 *  after it. Synchronous on purpose: appends are synchronous too, so a caller that
 *  subscribes to live records and takes the size in one synchronous stretch splits the log
 *  exactly into history (before) and live (after). */
export function logSizeSync(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 0;
    throw storageError('read', file, err);
  }
}
