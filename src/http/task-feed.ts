// The live task list of the dashboard: Server-Sent Events of task summaries, resumable with
// Last-Event-ID. Each update gets an id `<boot>:<n>`; the last 2,000 are kept, so a reader
// that reconnects within them gets exactly what it missed; a reader from another daemon
// process or from further back gets a fresh snapshot instead (never a silent gap).
import crypto from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { summarize, type TaskRecord, type TaskSummary } from '../store/records.js';
import type { SseStream } from './sse.js';

const KEEP = 2000;

interface Entry {
  n: number;
  task: TaskSummary;
}

export interface FeedSnapshot {
  tasks: TaskSummary[];
  counts: Record<string, number>;
}

export class TaskFeed {
  private readonly boot = crypto.randomBytes(6).toString('base64url');
  private readonly ring: Entry[] = [];
  private n = 0;
  private readonly readers = new Set<(e: Entry) => void>();
  private readonly onTask = (t: TaskRecord) => this.push(summarize(t));
  private readonly onDeleted = (id: string) => this.push({ id, deleted: true } as unknown as TaskSummary);

  constructor(
    private readonly engine: EventEmitter,
    private readonly counts: () => Record<string, number>,
  ) {
    engine.on('task', this.onTask);
    engine.on('deleted', this.onDeleted);
  }

  close(): void {
    this.engine.off('task', this.onTask);
    this.engine.off('deleted', this.onDeleted);
    this.readers.clear();
  }

  private push(task: TaskSummary): void {
    const e = { n: ++this.n, task };
    this.ring.push(e);
    if (this.ring.length > KEEP) this.ring.splice(0, this.ring.length - KEEP);
    for (const r of this.readers) r(e);
  }

  private idOf(n: number): string {
    return `${this.boot}:${n}`;
  }

  /** Streams to `sse`: the missed updates after `lastEventId` when they are all still kept, else a snapshot; then live updates. */
  async serve(sse: SseStream, lastEventId: string | undefined, snapshot: () => Promise<FeedSnapshot>): Promise<void> {
    const send = (e: Entry) => sse.send('task', { task: e.task, counts: this.counts() }, this.idOf(e.n));
    // Live updates are held back while the snapshot is read, then sent after it in order.
    const held: Entry[] = [];
    let live = false;
    const reader = (e: Entry) => (live ? send(e) : held.push(e));
    this.readers.add(reader);
    sse.onClose(() => this.readers.delete(reader));
    const [boot, nText] = (lastEventId ?? '').split(':');
    const after = Number(nText);
    const oldest = this.ring[0]?.n ?? this.n + 1;
    if (boot === this.boot && Number.isInteger(after) && after >= oldest - 1 && after <= this.n) {
      for (const e of this.ring) if (e.n > after) send(e);
    } else {
      const at = this.n;
      const snap = await snapshot();
      sse.send('snapshot', snap, this.idOf(at));
      // Updates that arrived while the snapshot was read may already be in it; sending them again is harmless (same task, newer or equal state).
    }
    live = true;
    for (const e of held.splice(0)) send(e);
  }
}
