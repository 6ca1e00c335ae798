// The main thread's side of webhook delivery: one worker thread (delivery-worker.ts) for all
// endpoints does the HMAC signing and the HTTP requests, so a busy endpoint costs the engine's
// thread a message now and then instead of a request per event. Attempts asked for in the same
// turn of the event loop go over in one message; outcomes come back the same way.
//
// The thread is started on first use. If it dies, every attempt it held ends as a failed
// attempt (the dispatcher retries it with backoff: at least once, as ever) and the next attempt
// starts a new thread. It keeps the process alive only while attempts are in flight.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FromThread, SendRequest, ToThread, WireTarget } from './delivery-protocol.js';
import type { AttemptOutcome, SendTarget } from './send.js';

/** The thread's script: beside this module (unbundled), or under src/ beside the daemon's bundle. */
function scriptPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'delivery-worker.js'), path.join(here, 'src', 'webhooks', 'delivery-worker.js')]) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`delivery-worker.js was not found next to ${here}`);
}

const failed = (error: string): AttemptOutcome => ({ kind: 'retry', status: null, error, retry_after_ms: null, duration_ms: 0 });

export class DeliveryThread {
  private worker: Worker | undefined;
  private lastError: Error | undefined;
  private next = 0;
  private closed = false;
  private batch: SendRequest[] = [];
  private readonly waiting = new Map<number, (o: AttemptOutcome) => void>();
  private readonly targets = new Map<string, WireTarget>();

  /** Makes an endpoint known (again, if its settings changed). */
  register(ep: SendTarget): void {
    const wire: WireTarget = { name: ep.name, url: ep.url, key: new Uint8Array(ep.key), timeout_ms: ep.timeout_ms, concurrency: ep.concurrency };
    this.targets.set(ep.name, wire);
    this.post({ t: 'endpoint', ep: wire });
  }

  /** One signed attempt of `body` (with webhook-id `id`) to a registered endpoint. */
  attempt(endpoint: string, id: string, body: string): Promise<AttemptOutcome> {
    if (this.closed) return Promise.resolve(failed('atlas is stopping'));
    const n = ++this.next;
    return new Promise((resolve) => {
      this.waiting.set(n, resolve);
      if (this.batch.length === 0) queueMicrotask(() => this.flush());
      this.batch.push({ n, endpoint, id, body });
    });
  }

  /** Stops the thread; attempts still in flight end as failed (the outbox sends them again later). */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.settleAll('atlas is stopping');
    if (w) await w.terminate();
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0 || this.closed) return;
    try {
      this.ensure().postMessage({ t: 'send', batch } satisfies ToThread);
      this.worker?.ref();
    } catch (err) {
      for (const r of batch) this.settle(r.n, failed(`could not start the webhook delivery thread: ${(err as Error).message}`));
    }
  }

  private post(m: ToThread): void {
    this.worker?.postMessage(m);
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(scriptPath(), { resourceLimits: { maxOldGenerationSizeMb: 64 } });
    this.worker = w;
    this.lastError = undefined;
    w.on('message', (m: FromThread) => {
      for (const o of m.outcomes) this.settle(o.n, o.outcome);
      if (this.waiting.size === 0) w.unref();
    });
    w.on('error', (err) => (this.lastError = err));
    w.once('exit', (code) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.settleAll(`the webhook delivery thread stopped (${this.lastError?.message ?? `exit code ${code}`})`);
    });
    for (const ep of this.targets.values()) w.postMessage({ t: 'endpoint', ep } satisfies ToThread);
    return w;
  }

  private settle(n: number, o: AttemptOutcome): void {
    const resolve = this.waiting.get(n);
    if (!resolve) return;
    this.waiting.delete(n);
    resolve(o);
  }

  private settleAll(why: string): void {
    for (const n of [...this.waiting.keys()]) this.settle(n, failed(why));
  }
}
