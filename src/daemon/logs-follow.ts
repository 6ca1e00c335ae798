// `logs -f` on a shared (PostgreSQL) store: the task may run on any daemon of the database,
// so its records are followed in the database, not through this daemon's runner.
//
// The protocol: the first page is the reply (as without --follow); its end, an ordinal, is
// turned into the `seq` of its last row, and from there a loop reads the rows after the last
// seq it sent, a batch at a time at the client's pace. A task's log rows commit in seq order
// (every writer holds the task's row: see PgStore.flush), so reading `seq > last` misses none
// and repeats none. Each round reads the task first and its rows second: once a round has
// seen the task settled, the rows read after it are the last ones, and the stream ends. A
// round runs every POLL_MS, or at once when this daemon's own runner changes the task.
// Transient records (not in the log: a full disk...) of a task run here are passed on as
// they come, as the file follower does.
import { setTimeout as sleep } from 'node:timers/promises';
import { isAtlasError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { NOTIFY } from '../protocol/methods.js';
import type { PgStore } from '../store/pg/pg-store.js';
import { summarize, type TaskRecord, type TaskStatus } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import type { Connection } from './rpc-server.js';

const POLL_MS = 200;
const BATCH = 500;

const SETTLED = (s: TaskStatus) => s !== 'pending' && s !== 'running';

/** Streams task `task`'s records after log ordinal `from` until it settles or the client goes. */
export function followInDatabase(engine: Engine, store: PgStore, task: TaskRecord, from: number, wanted: (r: LogRecord) => boolean, conn: Connection): void {
  // A nap between rounds, cut short when this daemon's runner changes the task.
  let waker: AbortController | undefined;
  const wake = () => waker?.abort();
  const onTask = (t: TaskRecord) => {
    if (t.id === task.id) wake();
  };
  const onLog = (id: string, record: LogRecord) => {
    if (id === task.id && record['transient'] === true && wanted(record)) conn.notify(NOTIFY.LOG, { id, record });
  };
  const unsubscribe = () => {
    engine.off('task', onTask);
    engine.off('log', onLog);
    wake();
  };
  engine.on('task', onTask);
  engine.on('log', onLog);
  conn.onClose(unsubscribe);
  const nap = async () => {
    waker = new AbortController();
    await sleep(POLL_MS, undefined, { signal: waker.signal }).catch(() => undefined);
    waker = undefined;
  };

  const run = async (): Promise<void> => {
    let last = await store.logSeqAt(task.id, from);
    let revision = task.revision;
    while (!conn.closed) {
      try {
        const now = await engine.getTask(task.id);
        for (;;) {
          const batch = await store.readLogAfter(task.id, last, wanted, BATCH);
          for (const record of batch.records) conn.notify(NOTIFY.LOG, { id: task.id, record });
          last = batch.last;
          if (batch.rows < BATCH || conn.closed) break;
          await conn.drained?.();
        }
        if (now.revision !== revision) {
          revision = now.revision;
          conn.notify(NOTIFY.TASK, { task: summarize(now) });
        }
        if (SETTLED(now.status)) break;
      } catch (err) {
        // A deleted (or archived) task has nothing more to say; a lost connection to the
        // database is tried again at the next round.
        if (isAtlasError(err, 'not_found')) break;
      }
      await nap();
    }
    conn.notify(NOTIFY.END, { id: task.id });
  };
  // After the reply: the client shows the first page before the rest.
  setImmediate(() => {
    run()
      .catch(() => conn.notify(NOTIFY.END, { id: task.id }))
      .finally(unsubscribe);
  });
}
