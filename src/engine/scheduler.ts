// Which task runs next. A global limit (p-queue, `max_concurrent_tasks`), one running task
// per workspace, and within those: higher priority first, then first come first served.
// Each workspace keeps its own ordered line; only a workspace's head is handed to p-queue,
// so a busy workspace never takes a global slot while it waits.
import PQueue from 'p-queue';

export interface QueueEntry {
  id: string;
  workspace: string;
  priority: number;
  /** FIFO key: creation time then id. */
  order: string;
}

export class Scheduler {
  private readonly queue: PQueue;
  private readonly lines = new Map<string, QueueEntry[]>();
  private readonly busy = new Set<string>();
  private readonly queued = new Set<string>();
  private paused = false;

  constructor(
    concurrency: number,
    private readonly run: (entry: QueueEntry) => Promise<void>,
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

  /** Drops a queued (not yet running) task. */
  remove(id: string): boolean {
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
      this.busy.add(ws);
      void this.queue.add(
        async () => {
          try {
            await this.run(entry);
          } finally {
            this.queued.delete(entry.id);
            this.busy.delete(ws);
            this.pump();
          }
        },
        { priority: entry.priority },
      );
    }
  }
}
