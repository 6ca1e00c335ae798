// The filesystem events log: append-only JSON lines in $ATLAS_HOME/events/, in segments named
// by their first seq (00000000000000000001.jsonl, ...), so old history is pruned by deleting
// whole files. Protocol:
//   append(drafts): seqs are given in memory, the batch is written with ONE write() (a batch is
//     all or nothing for a crash of this process), and a group fdatasync is scheduled;
//   when that fdatasync returns, every event written before it is durable and is announced
//     (onDurable), in seq order. Nothing is announced before it is on disk.
// On open, a torn last line (a power cut mid-write) is cut off: it was never announced.
// Pruning removes whole segments, oldest first, after it has written (durably) the seq and
// `at` of the newest event it removes to `pruned.json`, which repair reads.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { storageError } from '../errors.js';
import { DIR_MODE, FILE_MODE, fsyncDir, writeFileDurable } from '../store/atomic.js';
import { faultPoint } from '../util/fault.js';
import type { AtlasEvent, EventDraft } from './event.js';

/** What a store offers the events journal: the filesystem log here; a database table in other stores. */
export interface EventStore {
  /** Finds the last seq; repairs a torn tail. */
  open(): Promise<void>;
  /** Gives seqs and writes the batch now; it is announced through `onDurable` once durable. */
  append(drafts: readonly EventDraft[]): AtlasEvent[];
  /** Resolves once everything appended so far is durable. */
  flush(): Promise<void>;
  /** Called with each durable batch, in seq order. */
  onDurable: (events: AtlasEvent[]) => void;
  /** Events with seq > since, oldest first, at most `limit`, among those that are durable. */
  read(since: number, limit: number, filter?: (e: AtlasEvent) => boolean): Promise<AtlasEvent[]>;
  /** Newest first, one chunk at a time, for recovery's tail scan. */
  readBackward(): AsyncIterable<AtlasEvent[]>;
  readonly lastSeq: number;
  readonly durableSeq: number;
  /** When this home started keeping events (facts older than that have no events). */
  readonly genesis: string;
  /** The `at` of the newest event pruning removed, if any: a fact no newer than that may have
   *  had its event pruned, so repair must not take it for one a crash cut off. */
  readonly prunedAt?: string | undefined;
  /** Deletes whole segments whose events all have seq < `seq`; returns how many. */
  pruneBefore(seq: number): Promise<number>;
  /** The oldest seq still kept (what pruning left); lastSeq + 1 when the log holds none. */
  oldestSeq(): Promise<number>;
  close(): Promise<void>;
  /** True when the store writes a task's events itself, in the transaction of the checkpoint
   *  that made them (PostgreSQL): the journal then derives nothing and repair has nothing to do. */
  readonly transactional?: boolean;
  /** Such a store: a write just committed events; number and announce them soon. */
  poke?(): void;
  /** A store shared by several daemons: whether this daemon wrote the event (its webhooks
   *  deliver only those, so an event is delivered once, not once per daemon). */
  isLocal?(e: AtlasEvent): boolean;
}

const SEGMENT_RE = /^(\d{20})\.jsonl$/;
const segName = (first: number) => `${String(first).padStart(20, '0')}.jsonl`;

export interface EventStoreOptions {
  /** Fs store: start a new segment once the current one is this big (default 4 MiB, or
   *  ATLAS_EVENTS_SEGMENT_BYTES: tests use small segments to prune). */
  segmentBytes?: number;
  /** A background failure (an fsync that failed and will be retried). */
  onError?: (err: unknown) => void;
}

export class FsEventLog implements EventStore {
  onDurable: (events: AtlasEvent[]) => void = () => undefined;
  private segments: number[] = [];
  private fd: number | undefined;
  private size = 0;
  private seq = 0;
  private synced = 0;
  private genesisAt = '';
  private pruned: { seq: number; at: string } | undefined;
  private lastAt = '';
  private unsynced: AtlasEvent[] = [];
  private syncing = false;
  private waiters: Array<{ seq: number; resolve: () => void }> = [];
  private readonly segmentBytes: number;
  private readonly onError: (err: unknown) => void;

  constructor(
    readonly dir: string,
    options: EventStoreOptions = {},
  ) {
    const fromEnv = Number(process.env['ATLAS_EVENTS_SEGMENT_BYTES']);
    this.segmentBytes = options.segmentBytes ?? (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 4 * 1024 * 1024);
    this.onError = options.onError ?? (() => undefined);
  }

  get lastSeq(): number {
    return this.seq;
  }
  get durableSeq(): number {
    return this.synced;
  }
  get genesis(): string {
    return this.genesisAt;
  }
  get prunedAt(): string | undefined {
    return this.pruned?.at;
  }

  async open(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: DIR_MODE }).catch((err: unknown) => {
      throw storageError('create', this.dir, err);
    });
    const genesisFile = path.join(this.dir, 'genesis');
    try {
      this.genesisAt = (await fsp.readFile(genesisFile, 'utf8')).trim();
    } catch {
      this.genesisAt = new Date().toISOString();
      await fsp.writeFile(genesisFile, this.genesisAt + '\n', { mode: FILE_MODE });
      await fsyncDir(this.dir);
    }
    try {
      this.pruned = JSON.parse(await fsp.readFile(path.join(this.dir, 'pruned.json'), 'utf8')) as { seq: number; at: string };
    } catch {
      this.pruned = undefined;
    }
    this.segments = (await fsp.readdir(this.dir))
      .map((n) => SEGMENT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const last = this.segments.at(-1);
    if (last === undefined) {
      this.seq = 0;
      this.openSegment(1);
      await fsyncDir(this.dir);
    } else {
      const file = this.segFile(last);
      const text = await fsp.readFile(file, 'utf8');
      // Keep whole, parseable lines; a torn tail is cut off.
      let keep = 0;
      let lastSeq = last - 1;
      for (let start = 0; start < text.length; ) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        try {
          const e = JSON.parse(text.slice(start, nl)) as AtlasEvent;
          lastSeq = e.seq;
          this.lastAt = e.at;
        } catch {
          break;
        }
        start = nl + 1;
        keep = Buffer.byteLength(text.slice(0, start));
      }
      if (keep !== Buffer.byteLength(text)) await fsp.truncate(file, keep);
      this.seq = lastSeq;
      this.fd = fs.openSync(file, 'a', FILE_MODE);
      this.size = keep;
    }
    this.synced = this.seq;
  }

  append(drafts: readonly EventDraft[]): AtlasEvent[] {
    if (drafts.length === 0) return [];
    if (this.fd === undefined) throw storageError('append to', this.dir, new Error('the events log is closed'));
    if (this.size >= this.segmentBytes) this.roll();
    const events: AtlasEvent[] = [];
    let text = '';
    let seq = this.seq;
    // `at` only grows, even when the clock steps back: recovery's tail scan relies on it.
    const now = new Date().toISOString();
    const at = now > this.lastAt ? now : this.lastAt;
    for (const d of drafts) {
      const e: AtlasEvent = { seq: ++seq, id: d.id, type: d.type, at, task_id: d.task_id, workspace: d.workspace, data: d.data };
      events.push(e);
      text += JSON.stringify(e) + '\n';
    }
    const buf = Buffer.from(text);
    try {
      fs.writeSync(this.fd, buf);
    } catch (err) {
      throw storageError('append to', this.segFile(this.segments.at(-1)!), err);
    }
    this.seq = seq;
    this.lastAt = at;
    this.size += buf.length;
    this.unsynced.push(...events);
    this.scheduleSync();
    return events;
  }

  flush(): Promise<void> {
    if (this.synced >= this.seq) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ seq: this.seq, resolve }));
  }

  private scheduleSync(): void {
    if (this.syncing || this.fd === undefined) return;
    this.syncing = true;
    const batch = this.unsynced;
    this.unsynced = [];
    const upTo = this.seq;
    const fd = this.fd;
    fs.fdatasync(fd, (e) => {
      // A segment rolled meanwhile was fsynced whole by roll(): its fd being gone is no failure.
      const err = e && fd !== this.fd ? null : e;
      this.syncing = false;
      if (err) {
        // Not durable: keep them for the next try, announce nothing.
        this.unsynced = batch.concat(this.unsynced);
        this.onError(storageError('sync', this.dir, err));
        setTimeout(() => this.scheduleSync(), 100).unref();
        return;
      }
      this.synced = upTo;
      for (const w of this.waiters.filter((w) => w.seq <= upTo)) w.resolve();
      this.waiters = this.waiters.filter((w) => w.seq > upTo);
      try {
        this.onDurable(batch);
      } finally {
        if (this.unsynced.length > 0) this.scheduleSync();
      }
    });
  }

  /** Starts the next segment: the current one is made durable first (rare: once per segmentBytes). */
  private roll(): void {
    const fd = this.fd!;
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    this.openSegment(this.seq + 1);
    const dfd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }

  private openSegment(first: number): void {
    this.fd = fs.openSync(this.segFile(first), 'a', FILE_MODE);
    this.size = 0;
    this.segments.push(first);
  }

  private segFile(first: number): string {
    return path.join(this.dir, segName(first));
  }

  async read(since: number, limit: number, filter?: (e: AtlasEvent) => boolean): Promise<AtlasEvent[]> {
    const out: AtlasEvent[] = [];
    const upTo = this.synced;
    const segs = [...this.segments];
    for (let i = 0; i < segs.length && out.length < limit; i++) {
      const next = segs[i + 1];
      if (next !== undefined && next <= since + 1) continue; // wholly at or before `since`
      for (const e of await this.readSegment(segs[i]!)) {
        if (e.seq <= since) continue;
        if (e.seq > upTo) return out;
        if (filter && !filter(e)) continue;
        out.push(e);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async *readBackward(): AsyncIterable<AtlasEvent[]> {
    for (const first of [...this.segments].reverse()) yield (await this.readSegment(first)).reverse();
  }

  private async readSegment(first: number): Promise<AtlasEvent[]> {
    let text: string;
    try {
      text = await fsp.readFile(this.segFile(first), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []; // pruned meanwhile
      throw storageError('read', this.segFile(first), err);
    }
    const out: AtlasEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as AtlasEvent);
      } catch {
        // a line being written right now; it is past the durable seq anyway
      }
    }
    return out;
  }

  async pruneBefore(seq: number): Promise<number> {
    // A segment may go when the next one starts at or below `seq` (all of it is older); never the
    // current one. Oldest first, so a crash midway leaves the log whole from some seq on.
    let doomed = 0;
    while (doomed + 1 < this.segments.length && this.segments[doomed + 1]! <= seq) doomed++;
    if (doomed === 0) return 0;
    const newest = (await this.readSegment(this.segments[doomed - 1]!)).at(-1);
    if (newest && (!this.pruned || newest.seq > this.pruned.seq)) {
      this.pruned = { seq: newest.seq, at: newest.at };
      await writeFileDurable(path.join(this.dir, 'pruned.json'), JSON.stringify(this.pruned) + '\n');
    }
    let removed = 0;
    while (removed < doomed && this.segments.length > 1) {
      const first = this.segments.shift()!;
      await fsp.unlink(this.segFile(first)).catch(() => undefined);
      removed++;
      faultPoint('events.segment_pruned');
    }
    if (removed) await fsyncDir(this.dir);
    return removed;
  }

  async oldestSeq(): Promise<number> {
    return this.segments[0] ?? this.seq + 1;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
