// The daemon's Prometheus metrics (DESIGN §11; the names are part of the contract). One
// registry per process, because there is one daemon per process: code anywhere in the daemon
// (the webhook outbox, the PostgreSQL lease keeper) moves its metric through metrics().
// No task id is ever a label: labels stay few and bounded (status, template, step type,
// outcome), so a home with a million tasks still scrapes in one small page.
//
// The metrics are made, and prom-client loaded, when the first metric moves or is read, not
// at start: loading prom-client (with its default process metrics) was the largest single
// cost of a daemon's start after node-postgres.
import type PromClient from 'prom-client';
import { lazyPackage } from '../util/lazy-package.js';
import { VERSION } from '../version.js';

const promClient = lazyPackage<typeof PromClient>('prom-client');

/** What the gauges read at scrape time; set by the daemon once its engine is open. */
export interface GaugeSource {
  taskCounts(): Record<string, number>;
  slotsAvailable(): number;
  /** PostgreSQL store only: the lease keeper's running totals (undefined on the filesystem store). */
  leases?(): { takeovers: number; lost: number } | undefined;
}

let source: GaugeSource | undefined;

export function setGaugeSource(s: GaugeSource | undefined): void {
  source = s;
}

function build() {
  const { Counter, Gauge, Histogram, Registry } = promClient();
  const registry = new Registry();
  const made = {
    registry,
    /** Tasks that reached a terminal or failure status, by template and that status. */
    tasksFinished: new Counter({
      name: 'atlas_tasks_finished_total',
      help: 'Tasks that finished (completed, rejected, abandoned, or stopped in a failure status), by template and status.',
      labelNames: ['template', 'status'] as const,
      registers: [registry],
    }),
    /** One observation per finished step attempt. */
    stepDuration: new Histogram({
      name: 'atlas_step_duration_seconds',
      help: 'Duration of finished step attempts, by step type and attempt status.',
      labelNames: ['type', 'status'] as const,
      buckets: [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 14400],
      registers: [registry],
    }),
    /** Time from entering `pending` to starting to run. */
    queueWait: new Histogram({
      name: 'atlas_task_queue_wait_seconds',
      help: 'Time tasks waited in the queue (pending) before they started running.',
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600],
      registers: [registry],
    }),
    /** Webhook delivery attempts by outcome (delivered, failed, timeout, disabled, ...): moved by the webhook outbox. */
    webhookDeliveries: new Counter({
      name: 'atlas_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };

  new Gauge({ name: 'atlas_build_info', help: 'Always 1; the version is in the label.', labelNames: ['version'] as const, registers: [registry] }).set({ version: VERSION }, 1);

  new Gauge({
    name: 'atlas_tasks',
    help: 'Tasks in the store, by status.',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (!source) return;
      for (const [status, n] of Object.entries(source.taskCounts())) this.set({ status }, n);
    },
  });

  new Gauge({
    name: 'atlas_slots_available',
    help: 'Task slots free right now (max_concurrent_tasks minus running tasks).',
    registers: [registry],
    collect() {
      this.set(source ? source.slotsAvailable() : 0);
    },
  });

  // PostgreSQL store only (DESIGN §11): read from the lease keeper's totals at scrape time;
  // with the filesystem store they stay at 0.
  new Counter({
    name: 'atlas_lease_takeovers_total',
    help: 'Tasks this daemon took over from a daemon that died or lost its lease (PostgreSQL store).',
    registers: [registry],
    collect() {
      this.reset();
      const l = source?.leases?.();
      if (l) this.inc(l.takeovers);
    },
  });

  new Counter({
    name: 'atlas_lease_lost_total',
    help: 'Task leases this daemon lost to another daemon or to expiry (PostgreSQL store).',
    registers: [registry],
    collect() {
      this.reset();
      const l = source?.leases?.();
      if (l) this.inc(l.lost);
    },
  });
  return made;
}

let made: ReturnType<typeof build> | undefined;

/** The registry and the metrics the daemon moves, made at the first call. */
export function metrics(): ReturnType<typeof build> {
  return (made ??= build());
}

export async function metricsText(): Promise<{ contentType: string; body: string }> {
  const { registry } = metrics();
  return { contentType: registry.contentType, body: await registry.metrics() };
}
