// The daemon's webhooks: one dispatcher per configured endpoint (state under
// $ATLAS_HOME/webhooks/), all sending through one delivery thread, plus what `atlas webhook list | test | deliveries` asks for.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { AtlasError } from '../errors.js';
import type { EventJournal } from '../events/journal.js';
import { ensureDir } from '../store/atomic.js';
import { Dispatcher, type Delivery, type DispatcherEvents } from './dispatcher.js';
import { DeliveryThread } from './delivery-thread.js';
import type { AttemptOutcome } from './send.js';
import type { WebhookEndpoint } from './webhook-config.js';

export interface WebhookInfo {
  name: string;
  url: string;
  events: string[];
  disabled: { at: string; reason: string; url: string } | null;
  pending: number;
  more_in_log: boolean;
  in_flight: number;
  delivered: number;
  failed: number;
  cursor: number;
  last_seq: number;
}

export type WebhookTestResult = AttemptOutcome & { webhook: string; url: string; event_id: string };

export class WebhookManager extends EventEmitter<DispatcherEvents> {
  private readonly dispatchers = new Map<string, Dispatcher>();
  private readonly thread = new DeliveryThread();
  readonly dir: string;

  constructor(
    home: string,
    private readonly endpoints: WebhookEndpoint[],
    private readonly journal: EventJournal,
    private readonly warn: (msg: string) => void,
  ) {
    super();
    this.dir = path.join(home, 'webhooks');
  }

  async start(): Promise<void> {
    if (this.endpoints.length === 0) return;
    await ensureDir(this.dir);
    for (const ep of this.endpoints) {
      const d = new Dispatcher(ep, this.journal, this.thread, this.dir, this.warn);
      d.on('attempt', (outcome, name) => this.emit('attempt', outcome, name));
      this.dispatchers.set(ep.name, d);
      await d.start();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.dispatchers.values()].map((d) => d.stop()));
    await this.thread.close();
  }

  list(): WebhookInfo[] {
    return [...this.dispatchers.values()].map((d) => d.info());
  }

  deliveries(name: string | undefined, failedOnly: boolean): Array<Delivery & { webhook: string }> {
    const ds = name === undefined ? [...this.dispatchers.values()] : [this.get(name)];
    return ds.flatMap((d) => d.recent(failedOnly).map((x) => ({ webhook: d.ep.name, ...x })));
  }

  /** Sends one signed `webhook.test` event now, once, outside the outbox; returns what the receiver said. */
  async test(name: string): Promise<WebhookTestResult> {
    const ep = this.get(name).ep;
    const id = `test.${crypto.randomBytes(8).toString('hex')}`;
    const event = { seq: 0, id, type: 'webhook.test', at: new Date().toISOString(), task_id: null, workspace: null, data: { message: 'a test event from atlas webhook test' } };
    return { webhook: ep.name, url: ep.url, event_id: id, ...(await this.thread.attempt(ep.name, id, JSON.stringify(event))) };
  }

  private get(name: string): Dispatcher {
    const d = this.dispatchers.get(name);
    if (!d) {
      const names = [...this.dispatchers.keys()];
      throw new AtlasError('not_found', `no webhook ${name}; ${names.length ? `configured: ${names.join(', ')}` : 'none is configured (webhooks: in config.yaml)'}`, { details: { name } });
    }
    return d;
  }
}
