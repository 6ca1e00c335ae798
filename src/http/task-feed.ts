// The live task list of the dashboard: Server-Sent Events of task summaries, driven by the
// durable events (DESIGN §10) and resumable with Last-Event-ID, which is the store-wide seq.
//
//   - A reader with no (or an unknown) Last-Event-ID gets a snapshot, with the seq it stands
//     at as its id, then every change after that seq.
//   - A reader that reconnects with Last-Event-ID N gets the tasks changed after seq N, then
//     live changes: the daemon's own events.subscribe {since: N} replays them, no gap, no
//     duplicate. If events after N were pruned (the first seq is not N+1), a fresh snapshot
//     comes first.
//   - Events are coalesced per task: the message for a task carries its current summary and,
//     as id, the seq of its last event. Messages go out in that order, so after the message
//     with id S every task whose last event is at or before S has been sent as it now stands,
//     which is what makes a resume from S exact.
// A reader that falls behind is cut off by events.subscribe; the browser reconnects and resumes.
import type { Connection } from '../daemon/rpc-server.js';
import type { AtlasEvent } from '../events/event.js';
import { NOTIFY } from '../protocol/protocol.js';
import type { TaskSummary } from '../store/records.js';
import type { SseStream } from './sse.js';

export interface FeedSnapshot {
  tasks: TaskSummary[];
  counts: Record<string, number>;
}

export interface FeedSource {
  /** The newest seq in the store. */
  lastSeq(): number;
  /** events.subscribe {since}, through the daemon's handler, notifying `conn`. */
  subscribe(since: number, conn: Connection): Promise<unknown>;
  /** A task's summary as it stands now; undefined once it is gone. */
  summary(id: string): Promise<TaskSummary | undefined>;
  counts(): Record<string, number>;
}

export async function serveTaskFeed(sse: SseStream, lastEventId: string | undefined, snapshot: () => Promise<FeedSnapshot>, src: FeedSource): Promise<void> {
  const asked = lastEventId !== undefined && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : undefined;
  let since: number;
  if (asked !== undefined && asked <= src.lastSeq()) {
    since = asked;
  } else {
    since = src.lastSeq();
    sse.send('snapshot', await snapshot(), String(since));
  }
  // Everything below runs in order on one promise chain: snapshots, coalesced batches, the end.
  let chain: Promise<void> = Promise.resolve();
  const then = (fn: () => Promise<void> | void) => {
    chain = chain.then(fn).catch(() => sse.close());
  };
  const pending = new Map<string, number>();
  let scheduled = false;
  let first = true;
  const flush = async () => {
    scheduled = false;
    const batch = [...pending].sort((a, b) => a[1] - b[1]);
    pending.clear();
    for (const [id, seq] of batch) {
      if (sse.isClosed) return;
      const task = (await src.summary(id)) ?? ({ id, deleted: true } as unknown as TaskSummary);
      sse.send('task', { task, counts: src.counts() }, String(seq));
    }
  };
  const conn: Connection = {
    get closed() {
      return sse.isClosed;
    },
    notify: (method, params) => {
      if (method === NOTIFY.EVENT) {
        const e = (params as { event: AtlasEvent }).event;
        if (first) {
          first = false;
          if (e.seq > since + 1) then(async () => sse.send('snapshot', await snapshot(), String(e.seq - 1)));
        }
        pending.delete(e.task_id);
        pending.set(e.task_id, e.seq);
        if (!scheduled) {
          scheduled = true;
          // One tick later, so a burst (a replay, a step's several events) becomes one batch.
          then(() => new Promise<void>((r) => setImmediate(r)).then(flush));
        }
      } else if (method === NOTIFY.EVENT_ERROR) {
        then(() => sse.close());
      }
    },
    onClose: (fn) => sse.onClose(fn),
    bufferedBytes: () => sse.bufferedBytes(),
    drained: () => sse.drained(),
    end: () => then(() => sse.close()),
  };
  await src.subscribe(since, conn);
}
