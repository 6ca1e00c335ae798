// Which task runs next. A global limit (p-queue, `max_concurrent_tasks`), one running task
// per workspace, and within those: higher priority first, then first come first served.
// Each workspace keeps its own ordered line; only a workspace's head is handed to p-queue,
// so a busy workspace never takes a global slot while it waits. A run that parks (a long
// durable wait) gives its slot back but keeps its workspace until it runs again.
import PQueue from 'p-queue';

export interface QueueEntry {
  id: string;
  workspace: string;
  priority: number;
  /** FIFO key: creation time then id. */
  order: string;
}

/** The longest a parked run sleeps before it is looked at again. */
const MAX_PARK_MS = 3_600_000;

/** What a run returns: nothing when it ended, or the time (ms) it parked until. */
export type RunEnd = number | undefined | void;

export class Scheduler {
  private readonly queue: PQueue;
  private readonly lines = new Map<string, QueueEntry[]>();
  private readonly busy = new Set<string>();
  private readonly queued = new Set<string>();
  /** Parked runs: no slot, their workspace kept, a timer to run them again. */
  private readonly parked = new Map<string, { entry: QueueEntry; timer: NodeJS.Timeout }>();
  private paused = false;

  constructor(
    concurrency: number,
    private readonly run: (entry: QueueEntry) => Promise<RunEnd>,
  ) {
    this.queue = new PQueue({ concurrency });
  }

  /** A new limit (config reload): more slots start queued tasks at once; fewer let running ones finish. */
  setConcurrency(n: number): void {
    this.queue.concurrency = n;
  }

  get pending(): number {
    let n = 0;
    for (const line of this.lines.values()) n += line.length;
    return n;
  }

  get running(): number {
    return this.queue.pending;
  }

  /** Tasks parked in a long durable wait (no slot held). */
  get parkedCount(): number {
    return this.parked.size;
  }

  has(id: string): boolean {
    return this.queued.has(id);
  }

  enqueue(entry: QueueEntry): void {
    if (this.queued.has(entry.id)) return;
    this.queued.add(entry.id);
    const line = this.lines.get(entry.workspace) ?? [];
    line.push(entry);
    line.sort((a, b) => b.priority - a.priority || (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    this.lines.set(entry.workspace, line);
    this.pump();
  }

  /** Drops a queued (not yet running) or parked task; a parked one frees its workspace. */
  remove(id: string): boolean {
    const p = this.parked.get(id);
    if (p) {
      clearTimeout(p.timer);
      this.parked.delete(id);
      this.queued.delete(id);
      this.busy.delete(p.entry.workspace);
      this.pump();
      return true;
    }
    for (const [ws, line] of this.lines) {
      const i = line.findIndex((e) => e.id === id);
      if (i >= 0) {
        line.splice(i, 1);
        if (line.length === 0) this.lines.delete(ws);
        this.queued.delete(id);
        return true;
      }
    }
    return false;
  }

  /** Stops handing out new work; what runs goes on. */
  pause(): void {
    this.paused = true;
    // Parked tasks stay as checkpointed (running, parked_until): the next start resumes them.
    for (const p of this.parked.values()) clearTimeout(p.timer);
    this.parked.clear();
  }

  async onIdle(): Promise<void> {
    await this.queue.onIdle();
  }

  private pump(): void {
    if (this.paused) return;
    for (const [ws, line] of this.lines) {
      if (this.busy.has(ws) || line.length === 0) continue;
      const entry = line.shift()!;
      if (line.length === 0) this.lines.delete(ws);
      this.start(entry);
    }
  }

  private start(entry: QueueEntry): void {
    const ws = entry.workspace;
    this.busy.add(ws);
    void this.queue.add(
      async () => {
        let end: RunEnd;
        try {
          end = await this.run(entry);
        } finally {
          if (typeof end === 'number' && !this.paused && this.queued.has(entry.id)) this.hold(entry, end);
          else {
            this.queued.delete(entry.id);
            this.busy.delete(ws);
          }
          this.pump();
        }
      },
      { priority: entry.priority },
    );
  }

  /** Keeps a parked run's workspace and runs it again at `until` (ms since the epoch), or
   *  within the hour: a timer cannot hold a month (setTimeout overflows past 24.8 days), and a
   *  run before the deadline only parks again with the same deadline. */
  private hold(entry: QueueEntry, until: number): void {
    const timer = setTimeout(() => {
      if (this.parked.get(entry.id)?.timer !== timer) return;
      this.parked.delete(entry.id);
      if (!this.paused) this.start(entry);
    }, Math.min(MAX_PARK_MS, Math.max(0, until - Date.now())));
    this.parked.set(entry.id, { entry, timer });
  }
}
