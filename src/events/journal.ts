// The events journal: turns checkpointed task changes into events in the store's events log,
// and announces them once they are durable. The engine calls record() right after each
// checkpoint with the cursor of what it had already recorded for that task; the runner never
// waits for the log's fsync (a group fdatasync in the background), so a step costs one
// write() more. A crash between a checkpoint and its record() loses no event: repair()
// re-derives them from the checkpoints at the next start (see repair.ts), with the same ids.
// A transactional store (PostgreSQL) writes a checkpoint's events in the checkpoint's own
// transaction: record() then only asks it to announce them.
import { EventEmitter } from 'node:events';
import type { TaskRecord } from '../store/records.js';
import { archiveEvent, cursorOf, deriveEvents, type AtlasEvent, type Cursor, type EventDraft, type StepStart } from './event.js';
import type { EventStore } from './event-log.js';

export interface JournalEvents {
  /** A durable batch of events, in seq order. */
  event: [events: AtlasEvent[]];
}

/** Fault point for the crash tests: the chance that the process kills itself (SIGKILL) between a
 *  checkpoint and the write of its events, the window that repair() exists for. */
const KILL_BEFORE_RECORD = Number(process.env['ATLAS_FAULT_KILL_BEFORE_EVENTS'] ?? 0);

export class EventJournal extends EventEmitter<JournalEvents> {
  constructor(
    readonly store: EventStore,
    private readonly warn: (msg: string, err: unknown) => void = () => undefined,
  ) {
    super();
    this.setMaxListeners(0);
    store.onDurable = (events) => this.emit('event', events);
  }

  get lastSeq(): number {
    return this.store.durableSeq;
  }

  /**
   * Records the facts of `task` past `since` (transitions, step results) and the step starts
   * seen since the last call; returns the new cursor. Call it right after a checkpoint.
   */
  record(task: TaskRecord, since: Cursor, started: StepStart[] = []): Cursor {
    const next = cursorOf(task);
    if (next.t === since.t && next.r === since.r && started.length === 0) return next;
    if (this.store.transactional) {
      // The checkpoint wrote these events in its own transaction.
      this.store.poke?.();
      return next;
    }
    if (KILL_BEFORE_RECORD > 0 && Math.random() < KILL_BEFORE_RECORD) process.kill(process.pid, 'SIGKILL');
    this.append(deriveEvents(task, since, undefined, started), task.id);
    return next;
  }

  deleted(task: Pick<TaskRecord, 'id' | 'workspace' | 'status'>): void {
    this.append([{ id: `${task.id}.deleted`, type: 'task.deleted', task_id: task.id, workspace: task.workspace, data: { status: task.status } }], task.id);
  }

  /** A task moved into the archive or back (for a store whose archive does not write its own events). */
  moved(type: 'task.archived' | 'task.unarchived', task: Pick<TaskRecord, 'id' | 'workspace' | 'status'>, at: string, data: Record<string, unknown> = {}): void {
    this.append([archiveEvent(type, task, at, data)], task.id);
  }

  /** The change already stands in the checkpoint; an event that cannot be written is repaired at the next start. */
  private append(drafts: EventDraft[], id: string): void {
    try {
      this.store.append(drafts);
    } catch (err) {
      this.warn(`task ${id}: could not record ${drafts.length} event(s): ${(err as Error).message}`, err);
    }
  }
}
