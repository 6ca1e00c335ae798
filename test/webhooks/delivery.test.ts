// Webhooks against a real HTTP receiver on 127.0.0.1 that checks every request with the
// `standardwebhooks` package's own verifier (DESIGN §10): it answers 500 for a while, then 200
// (every event arrives, in order per task, none lost); the daemon is killed -9 between
// attempts (deliveries resume after the restart); a 410 disables the endpoint; a hanging
// receiver hits the per-attempt timeout; bad URLs and short secrets are refused.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { parseConfig } from '../../src/config/config.js';
import type { AtlasEvent } from '../../src/events/event.js';
import type { TaskRecord } from '../../src/store/records.js';
import type { Delivery } from '../../src/webhooks/dispatcher.js';
import { TestHome, waitFor } from '../helpers/daemon.js';
import { parsePrometheus, request, sample } from '../helpers/http.js';

type Mode = 'ok' | 'fail' | 'gone' | 'hang';

class Receiver {
  readonly secret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
  readonly received: Array<{ event: AtlasEvent; status: number }> = [];
  readonly badSignatures: string[] = [];
  mode: Mode = 'ok';
  /** Answer 500 to this many requests first. */
  failFirst = 0;
  private readonly hanging = new Set<http.ServerResponse>();
  private readonly server: http.Server;
  private readonly wh: Webhook;

  constructor() {
    this.wh = new Webhook(this.secret);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let event: AtlasEvent;
        try {
          event = this.wh.verify(body, req.headers as Record<string, string>) as AtlasEvent;
        } catch (err) {
          this.badSignatures.push((err as Error).message);
          res.writeHead(400).end();
          return;
        }
        assert.equal(req.headers['webhook-id'], event.id);
        if (this.mode === 'hang') {
          this.hanging.add(res);
          return;
        }
        const status = this.mode === 'gone' ? 410 : this.mode === 'fail' || this.failFirst-- > 0 ? 500 : 200;
        this.received.push({ event, status });
        res.writeHead(status, status === 500 ? { 'retry-after': '0' } : {}).end('ok');
      });
    });
  }

  listen(): Promise<string> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`)));
  }

  /** Event ids answered 2xx, in the order they were answered. */
  delivered(): AtlasEvent[] {
    return this.received.filter((r) => r.status === 200 && !r.event.id.startsWith('test.')).map((r) => r.event);
  }

  close(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function config(url: string, secret: string, extra = ''): string {
  return ['webhooks:', '  - name: hook', `    url: ${url}`, `    secret: ${secret}`, '    backoff: 50ms', '    max_backoff: 200ms', '    timeout: 1s', extra].filter(Boolean).join('\n') + '\n';
}

const STEPS = 'name: few\nsteps:\n' + [1, 2, 3].map((i) => `  - name: s${i}\n    type: shell\n    run: "true"\n`).join('');

async function events(h: TestHome): Promise<AtlasEvent[]> {
  const c = await h.client();
  return ((await c.call('events.list', { since: 0, limit: 10_000 })) as { events: AtlasEvent[] }).events;
}

/** Every event of the log arrived (2xx), and per task in seq order of first arrival. */
function assertAllInOrder(log: AtlasEvent[], rx: Receiver): void {
  assert.deepEqual(rx.badSignatures, [], 'every request verified');
  const firsts = new Map<string, AtlasEvent>();
  for (const e of rx.delivered()) if (!firsts.has(e.id)) firsts.set(e.id, e);
  assert.deepEqual([...firsts.keys()].sort(), log.map((e) => e.id).sort(), 'every event delivered');
  const perTask = new Map<string, number>();
  for (const e of firsts.values()) {
    assert.ok(e.seq > (perTask.get(e.task_id) ?? 0), `task ${e.task_id}: event ${e.seq} delivered after a later one`);
    perTask.set(e.task_id, e.seq);
  }
}

test('webhooks: 500s then 200s deliver every event, signed, in order per task; kill -9 between attempts resumes; 410 disables; a hang times out', { timeout: 240_000 }, async () => {
  const rx = new Receiver();
  const url = await rx.listen();
  const h = new TestHome();
  try {
    h.writeTemplate('few', STEPS);
    fs.mkdirSync(h.home, { recursive: true });
    fs.writeFileSync(path.join(h.home, 'config.yaml'), config(url, rx.secret, '    concurrency: 3'));
    await h.startDaemon();
    await h.createWorkspaces(['w1', 'w2']);
    const c = await h.client();

    // 1. The receiver fails the first 12 requests (500), then answers 200.
    rx.failFirst = 12;
    const ts = [(await c.call('task.start', { template: 'few', workspace: 'w1' })) as TaskRecord, (await c.call('task.start', { template: 'few', workspace: 'w2' })) as TaskRecord];
    for (const t of ts) await c.call('task.wait', { id: t.id });
    let log = await events(h);
    await waitFor('every event delivered', () => new Set(rx.delivered().map((e) => e.id)).size >= log.length, 30_000);
    assertAllInOrder(log, rx);
    assert.ok(rx.received.filter((r) => r.status === 500).length >= 12);
    // atlas_webhook_deliveries_total counts every attempt by its outcome.
    const l = await h.json<{ url: string }>(['dashboard']);
    const token = fs.readFileSync(path.join(h.home, 'http.token'), 'utf8').trim();
    const m = parsePrometheus((await request(`${l.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text);
    assert.ok((sample(m.samples, 'atlas_webhook_deliveries_total', { outcome: 'delivered' }) ?? 0) >= log.length, 'delivered attempts counted');
    assert.ok((sample(m.samples, 'atlas_webhook_deliveries_total', { outcome: 'retry' }) ?? 0) >= 12, 'failed attempts counted');

    // 2. kill -9 while deliveries are failing; they resume after the restart.
    rx.mode = 'fail';
    const before = rx.received.length;
    const t3 = (await c.call('task.start', { template: 'few', workspace: 'w1' })) as TaskRecord;
    await c.call('task.wait', { id: t3.id });
    await waitFor('a few failing attempts', () => rx.received.length >= before + 6);
    const pid = ((await c.call('daemon.ping')) as { pid: number }).pid;
    process.kill(pid, 'SIGKILL');
    await waitFor('the daemon to die', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    rx.mode = 'ok';
    await h.startDaemon();
    log = await events(h);
    await waitFor('every event delivered after the restart', () => new Set(rx.delivered().map((e) => e.id)).size >= log.length, 30_000);
    assertAllInOrder(log, rx);
    const c2 = await h.client();
    const list = (await c2.call('webhook.list')) as Array<{ name: string; delivered: number; disabled: unknown }>;
    assert.equal(list[0]!.name, 'hook');
    assert.equal(list[0]!.disabled, null);
    const ds = (await h.json<Array<Delivery & { webhook: string }>>(['webhook', 'deliveries', 'hook', '--json'])) as Array<Delivery & { webhook: string }>;
    assert.ok(ds.some((d) => d.status === 'delivered' && d.attempts > 1), 'deliveries show the retried ones');
    const testSend = await h.cli(['webhook', 'test', 'hook']);
    assert.equal(testSend.code, 0, testSend.stderr);

    // 3. A hanging receiver: the attempt times out (1 s) and is retried.
    rx.mode = 'hang';
    const t4 = (await c2.call('task.start', { template: 'few', workspace: 'w2' })) as TaskRecord;
    await c2.call('task.wait', { id: t4.id });
    await waitFor('a timed-out attempt', async () => ((await c2.call('webhook.deliveries', { name: 'hook', failed: true })) as Delivery[]).some((d) => /timed out after 1000 ms/.test(d.last_error ?? '')), 20_000);
    rx.mode = 'ok';
    log = await events(h);
    await waitFor('every event delivered after the hang', () => new Set(rx.delivered().map((e) => e.id)).size >= log.length, 30_000);
    assertAllInOrder(log, rx);

    // 4. 410 disables the endpoint: no more requests, and list says so.
    rx.mode = 'gone';
    const t5 = (await c2.call('task.start', { template: 'few', workspace: 'w1' })) as TaskRecord;
    await c2.call('task.wait', { id: t5.id });
    const disabled = await waitFor('the endpoint to be disabled', async () => {
      const l = (await c2.call('webhook.list')) as Array<{ disabled: { reason: string } | null }>;
      return l[0]!.disabled ?? undefined;
    });
    assert.match(disabled.reason, /410/);
    const count = rx.received.length;
    const t6 = (await c2.call('task.start', { template: 'few', workspace: 'w2' })) as TaskRecord;
    await c2.call('task.wait', { id: t6.id });
    // Bounded proof of silence: the task's events are durable (listed) and a restart still sends nothing.
    await h.stopDaemon();
    await h.startDaemon();
    const text = await h.ok(['webhook', 'list']);
    assert.match(text.stdout, /disabled/);
    assert.equal(rx.received.length, count, 'a disabled endpoint gets no more requests');
  } finally {
    await h.dispose();
    await rx.close();
  }
});

test('webhook config: only http(s) URLs, Standard Webhooks secrets of at least 24 bytes, names checked', () => {
  const good = `whsec_${crypto.randomBytes(32).toString('base64')}`;
  const parse = (url: string, secret: string) => parseConfig(`webhooks:\n  - name: a\n    url: ${url}\n    secret: ${secret}\n`, 'config.yaml');
  assert.equal(parse('https://example.com/x', good).webhooks[0]!.timeout_ms, 15_000);
  assert.throws(() => parse('ftp://example.com/x', good), /only http and https/);
  assert.throws(() => parse('file:///etc/passwd', good), /only http and https/);
  assert.throws(() => parse('https://example.com/x', `whsec_${crypto.randomBytes(16).toString('base64')}`), /at least 24 random bytes \(this one is 16\)/);
  assert.throws(() => parse('https://example.com/x', 'hunter2hunter2hunter2hunter2'), /whsec_/);
  assert.throws(() => parseConfig(`webhooks:\n  - name: A B\n    url: https://x.org\n    secret: ${good}\n`, 'config.yaml'), /name/);
});
