// The webhook delivery thread against a real receiver on 127.0.0.1: attempts asked for together
// arrive signed (checked with the standardwebhooks verifier) and come back with their outcomes;
// a thread that dies with attempts in flight ends them as failed attempts (the dispatcher
// retries them) and the next attempt starts a new thread; close() ends whatever is left.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { Webhook } from 'standardwebhooks';
import { DeliveryThread } from '../../src/webhooks/delivery-thread.js';
import { parseWebhooks } from '../../src/webhooks/webhook-config.js';
import { waitFor } from '../helpers/daemon.js';

test('delivery thread: signed attempts in a batch; a dead thread fails its attempts and is replaced; close ends the rest', { timeout: 60_000 }, async () => {
  const secret = `whsec_${crypto.randomBytes(32).toString('base64')}`;
  const wh = new Webhook(secret);
  const got: string[] = [];
  const held = new Set<http.ServerResponse>();
  let hang = false;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const e = wh.verify(body, req.headers as Record<string, string>) as { n: number };
      got.push(`${req.headers['webhook-id']}:${e.n}`);
      if (hang) held.add(res);
      else res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const [ep] = parseWebhooks([{ name: 'rx', url, secret, timeout: '5s' }], 'test');
  const thread = new DeliveryThread();
  try {
    thread.register(ep!);
    const outcomes = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => thread.attempt('rx', `ev${n}`, JSON.stringify({ n }))));
    assert.deepEqual(outcomes.map((o) => [o.kind, o.status]), Array(6).fill(['ok', 200]));
    assert.deepEqual([...got].sort(), ['ev1:1', 'ev2:2', 'ev3:3', 'ev4:4', 'ev5:5', 'ev6:6']);
    const unknown = await thread.attempt('nope', 'ev0', '{}');
    assert.equal(unknown.kind, 'retry');
    assert.match(unknown.error ?? '', /webhook nope is not known/);

    // The thread dies with two attempts in flight: both fail (to be retried), none hangs.
    hang = true;
    const inflight = [thread.attempt('rx', 'ev7', '{"n":7}'), thread.attempt('rx', 'ev8', '{"n":8}')];
    await waitFor('both attempts to reach the receiver', () => held.size === 2);
    const worker = (thread as unknown as { worker: Worker }).worker;
    await worker.terminate();
    for (const o of await Promise.all(inflight)) {
      assert.equal(o.kind, 'retry');
      assert.match(o.error ?? '', /delivery thread stopped/);
    }
    // The next attempt starts a new thread, which knows the endpoint.
    hang = false;
    const again = await thread.attempt('rx', 'ev7', '{"n":7}');
    assert.equal(again.kind, 'ok');
    assert.notEqual((thread as unknown as { worker: Worker }).worker, worker);

    // close(): what is in flight ends as failed, and so does anything asked for later.
    hang = true;
    const last = thread.attempt('rx', 'ev9', '{"n":9}');
    await waitFor('the attempt to reach the receiver', () => got.includes('ev9:9'));
    await thread.close();
    assert.match((await last).error ?? '', /stopping/);
    assert.match((await thread.attempt('rx', 'ev10', '{}')).error ?? '', /stopping/);
  } finally {
    await thread.close();
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
