// events.subscribe: replays the durable events after `since` from the log, then streams live
// ones, with no gap and no duplicate between the two. The live listener is registered first;
// live batches that arrive while the replay reads the log wait in a bounded queue, and every
// event is sent only if its seq is past the last one sent (so an event both read and queued
// goes out once). A subscriber that does not keep up (its socket buffer or the queue past a
// limit) is cut off with an events.error notification naming the last seq it got; it can
// subscribe again with since = that seq. The daemon's memory stays bounded either way.
import { eventFilter, type AtlasEvent, type EventFilter } from '../events/event.js';
import type { EventJournal } from '../events/journal.js';
import { NOTIFY } from '../protocol/protocol.js';
import type { Connection } from './rpc-server.js';

export interface StreamLimits {
  /** Socket bytes not yet read by the client before it is cut off (default 8 MiB). */
  maxBufferedBytes: number;
  /** Live events waiting while the replay runs (default 20,000). */
  maxQueued: number;
}

const envInt = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

/** ATLAS_EVENTS_MAX_BUFFERED / ATLAS_EVENTS_MAX_QUEUED override them (tests use small ones). */
export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxBufferedBytes: envInt('ATLAS_EVENTS_MAX_BUFFERED', 8 * 1024 * 1024),
  maxQueued: envInt('ATLAS_EVENTS_MAX_QUEUED', 20_000),
};

const REPLAY_CHUNK = 5000;

export function subscribeEvents(
  journal: EventJournal,
  p: EventFilter & { since?: number | undefined },
  conn: Connection,
  limits: StreamLimits = DEFAULT_STREAM_LIMITS,
): { since: number; last_seq: number } {
  const wanted = eventFilter(p);
  const since = p.since ?? journal.lastSeq;
  let last = since;
  let queue: AtlasEvent[] | undefined = [];
  let dead = false;

  const cut = (why: string) => {
    if (dead) return;
    dead = true;
    journal.off('event', onEvent);
    conn.notify(NOTIFY.EVENT_ERROR, {
      code: 'slow_subscriber',
      message: `${why}; the stream was cut off after seq ${last}: subscribe again with since ${last}`,
      last_seq: last,
    });
    conn.end?.();
  };
  const send = (e: AtlasEvent): void => {
    if (dead || e.seq <= last) return;
    last = e.seq;
    if (wanted(e)) conn.notify(NOTIFY.EVENT, { event: e });
  };
  const onEvent = (batch: AtlasEvent[]) => {
    if (dead) return;
    if (queue) {
      queue.push(...batch);
      if (queue.length > limits.maxQueued) cut(`more than ${limits.maxQueued} events arrived while the history was replayed`);
      return;
    }
    for (const e of batch) send(e);
    if ((conn.bufferedBytes?.() ?? 0) > limits.maxBufferedBytes) cut(`the reader fell ${(conn.bufferedBytes?.() ?? 0)} bytes behind`);
  };
  journal.on('event', onEvent);
  conn.onClose(() => {
    dead = true;
    journal.off('event', onEvent);
  });

  // After the response has been written: the replay, then the queued live events.
  setImmediate(() => {
    void (async () => {
      try {
        for (;;) {
          if (dead) return;
          const chunk = await journal.store.read(last, REPLAY_CHUNK);
          if (chunk.length === 0) break;
          for (const e of chunk) send(e);
          if ((conn.bufferedBytes?.() ?? 0) > limits.maxBufferedBytes / 2) await conn.drained?.();
        }
        const held = queue ?? [];
        queue = undefined;
        for (const e of held) send(e);
      } catch (err) {
        if (!dead) {
          dead = true;
          journal.off('event', onEvent);
          conn.notify(NOTIFY.EVENT_ERROR, { code: 'storage', message: `could not read the events log: ${(err as Error).message}`, last_seq: last });
          conn.end?.();
        }
      }
    })();
  });
  return { since, last_seq: journal.lastSeq };
}

/** events.list: one page of durable events after `since`; first_seq tells whether older ones were pruned. */
export async function listEvents(journal: EventJournal, p: EventFilter & { since?: number | undefined; limit?: number | undefined }): Promise<{ events: AtlasEvent[]; last_seq: number; next_since: number; first_seq: number }> {
  const first_seq = await journal.store.oldestSeq();
  const limit = p.limit ?? 1000;
  const wanted = eventFilter(p);
  const events: AtlasEvent[] = [];
  let cursor = p.since ?? 0;
  // Read unfiltered pages so that `next_since` moves past events the filter skipped.
  while (events.length < limit) {
    const page = await journal.store.read(cursor, Math.max(limit, REPLAY_CHUNK));
    if (page.length === 0) break;
    for (const e of page) {
      cursor = e.seq;
      if (wanted(e)) {
        events.push(e);
        if (events.length >= limit) break;
      }
    }
  }
  return { events, last_seq: journal.lastSeq, next_since: cursor, first_seq };
}
