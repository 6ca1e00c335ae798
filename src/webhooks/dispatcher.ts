// One webhook endpoint's delivery loop. The outbox is the durable events log itself: this
// endpoint's state (webhooks/<name>.json) keeps a cursor (every event at or below it is done),
// the seqs above it already delivered, and the attempt counts of those still pending. So an
// event is never lost: after a crash, whatever the state file does not mark done is sent again
// (at least once; the receiver dedupes by webhook-id). The state is written at most every
// 200 ms, atomically and durably, and at stop.
//
// Order and pace: events of one task go one at a time, in seq order (a failing event holds
// back the later events of its task only); at most `concurrency` requests in flight; a failed
// attempt is retried with exponential backoff and jitter (or after Retry-After, if longer)
// until `retry_for` has passed since its first attempt, then recorded as failed. A 410 disables
// the endpoint until its URL changes in config.yaml. Memory is bounded: at most WINDOW pending
// events are held; the rest stay in the log until there is room.
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurable } from '../store/atomic.js';
import { typeMatcher, type AtlasEvent } from '../events/event.js';
import type { EventJournal } from '../events/journal.js';
import type { DeliveryThread } from './delivery-thread.js';
import type { AttemptOutcome } from './send.js';
import type { WebhookInfo } from './manager.js';
import type { WebhookEndpoint } from './webhook-config.js';

const WINDOW = 1000;
const MAX_DONE = 10_000;
const KEEP_DELIVERIES = 200;
const PERSIST_MS = 200;

export type DeliveryStatus = 'pending' | 'retrying' | 'delivered' | 'failed';

export interface Delivery {
  event_id: string;
  seq: number;
  type: string;
  task_id: string;
  status: DeliveryStatus;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  duration_ms: number | null;
}

interface Entry {
  event: AtlasEvent;
  attempts: number;
  first_at: number;
  next_at: number;
  inflight: boolean;
  delivery: Delivery;
}

interface SavedState {
  url: string;
  cursor: number;
  done: number[];
  attempts: Record<string, { n: number; first_at: number; next_at: number }>;
  disabled: { at: string; reason: string; url: string } | null;
  delivered: number;
  failed: number;
  deliveries: Delivery[];
}

export interface DispatcherEvents {
  /** Every finished attempt, for metrics: 'delivered' | 'retry' | 'failed' | 'disabled'. */
  attempt: [outcome: 'delivered' | 'retry' | 'failed' | 'disabled', endpoint: string];
}

export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private queue: Entry[] = [];
  private readonly done = new Set<number>();
  private saved: SavedState['attempts'] = {};
  private readPos = 0;
  private behind = true;
  private filling = false;
  private inflight = 0;
  private stopped = false;
  private disabled: SavedState['disabled'] = null;
  private delivered = 0;
  private failed = 0;
  private deliveries: Delivery[] = [];
  private timer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  private persisting: Promise<void> = Promise.resolve();
  private readonly matches: (type: string) => boolean;
  private readonly file: string;
  private readonly onEvent = (batch: AtlasEvent[]) => this.take(batch);

  constructor(
    readonly ep: WebhookEndpoint,
    private readonly journal: EventJournal,
    private readonly thread: DeliveryThread,
    dir: string,
    private readonly warn: (msg: string) => void,
  ) {
    super();
    thread.register(ep);
    this.matches = typeMatcher(ep.events);
    this.file = path.join(dir, `${ep.name}.json`);
  }

  async start(): Promise<void> {
    let s: SavedState | undefined;
    try {
      s = JSON.parse(await fsp.readFile(this.file, 'utf8')) as SavedState;
    } catch {
      s = undefined;
    }
    if (s) {
      this.readPos = s.cursor;
      for (const d of s.done) this.done.add(d);
      this.saved = s.attempts ?? {};
      this.disabled = s.disabled && s.disabled.url === this.ep.url ? s.disabled : null;
      this.delivered = s.delivered ?? 0;
      this.failed = s.failed ?? 0;
      this.deliveries = s.deliveries ?? [];
    } else {
      // A new endpoint gets the events from now on, not the whole history.
      this.readPos = this.journal.lastSeq;
      await this.persistNow();
    }
    this.journal.on('event', this.onEvent);
    void this.fill();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.journal.off('event', this.onEvent);
    clearTimeout(this.timer);
    clearTimeout(this.persistTimer);
    await this.persistNow();
  }

  info(): WebhookInfo {
    return {
      name: this.ep.name,
      url: this.ep.url,
      events: this.ep.events,
      disabled: this.disabled,
      pending: this.queue.length,
      more_in_log: this.behind,
      in_flight: this.inflight,
      delivered: this.delivered,
      failed: this.failed,
      cursor: this.cursor(),
      last_seq: this.journal.lastSeq,
    };
  }

  recent(failedOnly: boolean): Delivery[] {
    const pending = this.queue.map((e) => e.delivery);
    const all = [...this.deliveries, ...pending.filter((d) => d.attempts > 0 || !failedOnly)];
    return (failedOnly ? all.filter((d) => d.status === 'failed' || d.status === 'retrying') : all).sort((a, b) => a.seq - b.seq);
  }

  /** Everything at or below this seq is done. */
  private cursor(): number {
    const first = this.queue[0];
    return first ? first.event.seq - 1 : this.readPos;
  }

  private take(batch: AtlasEvent[]): void {
    if (this.stopped || this.disabled) return;
    if (this.behind || this.filling) {
      this.behind = true;
      return;
    }
    for (const e of batch) {
      if (e.seq <= this.readPos) continue;
      if (this.queue.length >= WINDOW || this.done.size >= MAX_DONE) {
        this.behind = true;
        break;
      }
      this.admit(e);
    }
    this.pump();
  }

  private admit(e: AtlasEvent): void {
    this.readPos = e.seq;
    if (!this.matches(e.type) || this.done.has(e.seq) || this.journal.store.isLocal?.(e) === false) return;
    const s = this.saved[String(e.seq)];
    const delivery: Delivery = {
      event_id: e.id,
      seq: e.seq,
      type: e.type,
      task_id: e.task_id,
      status: s ? 'retrying' : 'pending',
      attempts: s?.n ?? 0,
      last_status: null,
      last_error: null,
      last_attempt_at: null,
      next_attempt_at: s ? new Date(s.next_at).toISOString() : null,
      duration_ms: null,
    };
    this.queue.push({ event: e, attempts: s?.n ?? 0, first_at: s?.first_at ?? Date.now(), next_at: s?.next_at ?? 0, inflight: false, delivery });
  }

  private async fill(): Promise<void> {
    if (this.filling || this.stopped || this.disabled) return;
    this.filling = true;
    try {
      for (;;) {
        if (this.queue.length >= WINDOW || this.done.size >= MAX_DONE) break;
        const page = await this.journal.store.read(this.readPos, 500);
        if (page.length === 0) {
          this.behind = false;
          break;
        }
        for (const e of page) {
          if (this.queue.length >= WINDOW) break;
          this.admit(e);
        }
      }
    } catch (err) {
      this.warn(`webhook ${this.ep.name}: could not read the events log: ${(err as Error).message}`);
    } finally {
      this.filling = false;
    }
    this.pump();
  }

  private pump(): void {
    if (this.stopped || this.disabled) return;
    const now = Date.now();
    const blocked = new Set<string>();
    let earliest = Infinity;
    for (const e of this.queue) {
      if (this.inflight >= this.ep.concurrency) break;
      if (blocked.has(e.event.task_id)) continue;
      blocked.add(e.event.task_id);
      if (e.inflight) continue;
      if (e.next_at > now) {
        earliest = Math.min(earliest, e.next_at);
        continue;
      }
      void this.send(e);
    }
    clearTimeout(this.timer);
    if (earliest !== Infinity) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, earliest - Date.now()));
      this.timer.unref();
    }
    if (this.behind && !this.filling && this.queue.length < WINDOW / 2) void this.fill();
  }

  private async send(e: Entry): Promise<void> {
    e.inflight = true;
    this.inflight++;
    const o: AttemptOutcome = await this.thread.attempt(this.ep.name, e.event.id, JSON.stringify(e.event));
    e.inflight = false;
    this.inflight--;
    if (this.stopped) return;
    e.attempts++;
    const now = Date.now();
    const d = e.delivery;
    d.attempts = e.attempts;
    d.last_status = o.status;
    d.last_error = o.error;
    d.last_attempt_at = new Date(now).toISOString();
    d.duration_ms = o.duration_ms;
    if (o.kind === 'ok' || o.kind === 'gone' || now - e.first_at >= this.ep.retry_for_ms) {
      this.finish(e, o.kind === 'ok' ? 'delivered' : 'failed');
      if (o.kind === 'ok') this.emit('attempt', 'delivered', this.ep.name);
      else if (o.kind === 'gone') this.disable(`the receiver answered 410 Gone to event ${e.event.id}`);
      else {
        this.emit('attempt', 'failed', this.ep.name);
        this.warn(`webhook ${this.ep.name}: gave up on event ${e.event.id} after ${e.attempts} attempts: ${o.error ?? ''}`);
      }
    } else {
      const ceiling = Math.min(this.ep.max_backoff_ms, this.ep.backoff_ms * 2 ** (e.attempts - 1));
      const backoff = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      const wait = Math.max(backoff, Math.min(o.retry_after_ms ?? 0, 24 * 3600_000));
      e.next_at = now + wait;
      d.status = 'retrying';
      d.next_attempt_at = new Date(e.next_at).toISOString();
      this.saved[String(e.event.seq)] = { n: e.attempts, first_at: e.first_at, next_at: e.next_at };
      this.emit('attempt', 'retry', this.ep.name);
    }
    this.dirty();
    this.pump();
  }

  private finish(e: Entry, status: 'delivered' | 'failed'): void {
    const i = this.queue.indexOf(e);
    if (i >= 0) this.queue.splice(i, 1);
    delete this.saved[String(e.event.seq)];
    e.delivery.status = status;
    e.delivery.next_attempt_at = null;
    if (status === 'delivered') this.delivered++;
    else this.failed++;
    this.done.add(e.event.seq);
    const cursor = this.cursor();
    for (const s of this.done) if (s <= cursor) this.done.delete(s);
    this.deliveries.push(e.delivery);
    if (this.deliveries.length > KEEP_DELIVERIES) this.deliveries.splice(0, this.deliveries.length - KEEP_DELIVERIES);
  }

  private disable(reason: string): void {
    this.disabled = { at: new Date().toISOString(), reason, url: this.ep.url };
    clearTimeout(this.timer);
    this.emit('attempt', 'disabled', this.ep.name);
    this.warn(`webhook ${this.ep.name} disabled: ${reason}; change its url in config.yaml to enable it again`);
    void this.persistNow();
  }

  private dirty(): void {
    if (this.persistTimer || this.stopped) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      void this.persistNow();
    }, PERSIST_MS);
    this.persistTimer.unref();
  }

  private persistNow(): Promise<void> {
    const state: SavedState = {
      url: this.ep.url,
      cursor: this.cursor(),
      done: [...this.done].sort((a, b) => a - b),
      attempts: this.saved,
      disabled: this.disabled,
      delivered: this.delivered,
      failed: this.failed,
      deliveries: this.deliveries,
    };
    const text = JSON.stringify(state);
    this.persisting = this.persisting
      .then(async () => void (await writeFileDurable(this.file, text)))
      .catch((err: unknown) => this.warn(`webhook ${this.ep.name}: could not save its delivery state: ${(err as Error).message}`));
    return this.persisting;
  }
}
