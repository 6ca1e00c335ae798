// The daemon's side of the HTTP listener: metrics wired to the engine from the start (so a
// listener turned on later still counts what happened before), the listener started before
// recovery when config.yaml asks for it (so /readyz can say "not ready" while recovery
// runs), or later by `atlas dashboard` (http.login), and closed at stop.
import path from 'node:path';
import type { Logger } from 'pino';
import { httpConfig, type HttpConfig } from '../config/config.js';
import type { Engine } from '../engine/engine.js';
import { HttpListener, type Readiness } from '../http/server.js';
import { metrics, setGaugeSource } from '../metrics/metrics.js';
import { observeTasks } from '../metrics/task-metrics.js';
import { summarize } from '../store/records.js';
import type { Handlers } from './rpc-server.js';

export const DEFAULT_LISTEN = '127.0.0.1:7390';

export interface LoginResult {
  url: string;
  login_url: string;
  listen: string;
  /** True when this call turned the listener on (config.yaml did not). */
  started_now: boolean;
}

export class HttpControl {
  private listener: HttpListener | undefined;
  private starting: Promise<HttpListener> | undefined;
  private handlers: Handlers | undefined;
  private readonly unobserve: () => void;

  constructor(
    private readonly engine: Engine,
    private readonly home: string,
    private readonly log: Logger,
    private readonly isRunning: () => boolean,
  ) {
    const unobserveTasks = observeTasks(engine);
    const onAttempt = (outcome: string) => metrics().webhookDeliveries.inc({ outcome });
    engine.webhooks.on('attempt', onAttempt);
    this.unobserve = () => {
      unobserveTasks();
      engine.webhooks.off('attempt', onAttempt);
    };
    setGaugeSource({
      taskCounts: () => engine.taskCounts(),
      slotsAvailable: () => Math.max(0, engine.config.max_concurrent_tasks - engine.runningCount),
      leases: () => (engine.cluster ? { takeovers: engine.cluster.takeovers, lost: engine.cluster.leasesLost } : undefined),
    });
  }

  /** Starts the listener if config.yaml turns it on. */
  async startConfigured(): Promise<void> {
    if (this.engine.config.http) await this.ensure(this.engine.config.http);
  }

  /** Called once recovery is over and the handlers exist: the API starts answering. */
  serve(handlers: Handlers): void {
    this.handlers = handlers;
  }

  /** A one-time login URL, turning the listener on first (at `listen`, or config's, or 127.0.0.1:7390) if it is off. */
  async login(listen?: string): Promise<LoginResult> {
    const was = this.listener !== undefined;
    const l = this.listener ?? (await this.ensure(listen !== undefined ? httpConfig(listen, false, 'listen') : (this.engine.config.http ?? httpConfig(DEFAULT_LISTEN, false))));
    return { url: l.url, login_url: l.loginUrl(), listen: `${l.address.host}:${l.address.port}`, started_now: !was };
  }

  private ensure(config: HttpConfig): Promise<HttpListener> {
    this.starting ??= HttpListener.start(config, {
      tokenFile: path.join(this.home, 'http.token'),
      log: this.log,
      handlers: () => this.handlers,
      counts: () => this.engine.taskCounts(),
      lastSeq: () => this.engine.events.lastSeq,
      summary: (id) => this.engine.getTask(id).then(summarize, () => undefined),
      readiness: () => this.readiness(),
    }).then(
      (l) => {
        this.listener = l;
        this.log.info({ http: l.url }, `HTTP listener on ${l.url}`);
        return l;
      },
      (err: unknown) => {
        this.starting = undefined;
        throw err;
      },
    );
    return this.starting;
  }

  private async readiness(): Promise<Readiness> {
    if (!this.isRunning() || !this.handlers) return { ready: false, reason: 'recovering: the daemon has not finished starting' };
    // The store answers a small read within a few seconds (a file listing, or a query with the PostgreSQL store).
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.engine.store.workspaces.list(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000);
        }),
      ]);
    } catch (err) {
      return { ready: false, reason: `the store is not reachable: ${(err as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
    return { ready: true };
  }

  async close(): Promise<void> {
    this.unobserve();
    setGaugeSource(undefined);
    await (this.starting?.catch(() => undefined));
    await this.listener?.close().catch(() => undefined);
    this.listener = undefined;
  }
}
