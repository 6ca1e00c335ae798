// /metrics, /healthz and /readyz against a real daemon: the exposition parses as Prometheus
// text with the contract's names, its counters move when tasks finish, no task id is ever a
// label, and /readyz says "not ready" until recovery has finished (held at a fault gate).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestHome, waitFor } from '../helpers/daemon.js';
import { freePort, homeWithListener, parsePrometheus, request, sample } from '../helpers/http.js';
import { VERSION } from '../../src/version.js';

describe('/metrics', () => {
  let home: TestHome;
  let base: string;
  let token: string;
  const scrape = async () => {
    const r = await request(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return parsePrometheus(r.text);
  };

  before(async () => {
    ({ home, base, token } = await homeWithListener({ templates: ['quick', 'failing', 'three'] }));
    await home.createWorkspaces(['a', 'b']);
  });
  after(async () => {
    await home?.dispose();
  });

  test('exposes the contract metrics, and the counters move when tasks finish', async () => {
    const before = await scrape();
    for (const [name, type] of [
      ['atlas_tasks', 'gauge'],
      ['atlas_tasks_finished_total', 'counter'],
      ['atlas_step_duration_seconds', 'histogram'],
      ['atlas_task_queue_wait_seconds', 'histogram'],
      ['atlas_slots_available', 'gauge'],
      ['atlas_webhook_deliveries_total', 'counter'],
      ['atlas_build_info', 'gauge'],
      ['atlas_lease_takeovers_total', 'counter'],
      ['atlas_lease_lost_total', 'counter'],
    ] as const) {
      assert.equal(before.types.get(name), type, `${name} should be a ${type}`);
    }
    assert.equal(sample(before.samples, 'atlas_build_info', { version: VERSION }), 1);
    assert.equal(sample(before.samples, 'atlas_slots_available'), 4);
    assert.equal(sample(before.samples, 'atlas_lease_takeovers_total'), 0, 'no leases on the filesystem store');
    assert.equal(sample(before.samples, 'atlas_tasks_finished_total', { template: 'quick', status: 'completed' }) ?? 0, 0);

    const c = await home.client();
    const ids: string[] = [];
    for (const [template, ws] of [['quick', 'a'], ['quick', 'b'], ['failing', 'a'], ['three', 'b']] as const) {
      ids.push(((await c.call('task.start', { template, workspace: ws })) as { id: string }).id);
    }
    for (const id of ids) await home.waitSettled(id);

    const now = await scrape();
    assert.equal(sample(now.samples, 'atlas_tasks_finished_total', { template: 'quick', status: 'completed' }), 2);
    assert.equal(sample(now.samples, 'atlas_tasks_finished_total', { template: 'failing', status: 'failed' }), 1);
    assert.equal(sample(now.samples, 'atlas_tasks_finished_total', { template: 'three', status: 'completed' }), 1);
    assert.equal(sample(now.samples, 'atlas_tasks', { status: 'completed' }), 3);
    assert.equal(sample(now.samples, 'atlas_tasks', { status: 'failed' }), 1);
    // 2 quick + 3 three steps completed; 1 failing step failed.
    assert.equal(sample(now.samples, 'atlas_step_duration_seconds_count', { type: 'shell', status: 'completed' }), 5);
    assert.equal(sample(now.samples, 'atlas_step_duration_seconds_count', { type: 'shell', status: 'failed' }), 1);
    assert.ok((sample(now.samples, 'atlas_step_duration_seconds_sum', { type: 'shell', status: 'completed' }) ?? 0) > 0);
    assert.equal(sample(now.samples, 'atlas_step_duration_seconds_bucket', { type: 'shell', status: 'completed', le: '+Inf' }), 5);
    assert.equal(sample(now.samples, 'atlas_task_queue_wait_seconds_count'), 4);
    assert.equal(sample(now.samples, 'atlas_slots_available'), 4);
    // No task id (or anything like one) in any label.
    for (const s of now.samples) for (const v of Object.values(s.labels)) assert.doesNotMatch(v, /task-\d{8}/, `${s.name} has a task id label`);

    // A resumed failure that fails again counts again; the same finished task never counts twice.
    await c.call('task.resume', { id: ids[2]! });
    await home.waitTask(ids[2]!, 'failed again', (t) => t.status === 'failed' && t.step_results.length === 2);
    const later = await scrape();
    assert.equal(sample(later.samples, 'atlas_tasks_finished_total', { template: 'failing', status: 'failed' }), 2);
    assert.equal(sample(later.samples, 'atlas_tasks_finished_total', { template: 'quick', status: 'completed' }), 2);
  });

  test('a restarted daemon does not count tasks that finished before it', async () => {
    await home.stopDaemon();
    await home.startDaemon();
    const l = await home.json<{ url: string }>(['dashboard']);
    base = l.url;
    const m = await scrape();
    assert.equal(sample(m.samples, 'atlas_tasks_finished_total', { template: 'quick', status: 'completed' }) ?? 0, 0);
    assert.equal(sample(m.samples, 'atlas_tasks', { status: 'completed' }), 3, 'the gauge reads the store');
  });
});

describe('/healthz and /readyz', () => {
  test('/readyz is 503 until recovery has finished, then 200; /healthz answers throughout', async () => {
    const home = new TestHome({ templates: ['quick'] });
    try {
      const port = await freePort();
      fs.mkdirSync(home.home, { recursive: true });
      fs.writeFileSync(path.join(home.home, 'config.yaml'), `http:\n  listen: "127.0.0.1:${port}"\n`);
      const gate = path.join(home.root, 'recovery-gate');
      const starting = home.spawn(['daemon', 'start'], { env: { ATLAS_FAULT_RECOVERY_GATE: gate } });
      const base = `http://127.0.0.1:${port}`;
      await waitFor('the listener to answer /healthz', async () => (await request(`${base}/healthz`).catch(() => undefined))?.status === 200, 20_000);
      const token = fs.readFileSync(path.join(home.home, 'http.token'), 'utf8').trim();
      const auth = { authorization: `Bearer ${token}` };
      const early = await request(`${base}/readyz`, { headers: auth });
      assert.equal(early.status, 503, early.text);
      assert.match(early.json<{ reason: string }>().reason, /recover/);
      // The API is not served half-recovered either.
      assert.equal((await request(`${base}/api/task.list`, { headers: auth })).status, 503);
      fs.writeFileSync(gate, '');
      assert.equal((await starting.result).code, 0);
      const ready = await request(`${base}/readyz`, { headers: auth });
      assert.equal(ready.status, 200, ready.text);
      assert.equal(ready.json<{ status: string }>().status, 'ready');
      assert.equal((await request(`${base}/healthz`)).json<{ status: string }>().status, 'ok');
      await home.stopDaemon();
      await assert.rejects(request(`${base}/healthz`), 'the listener closes with the daemon');
    } finally {
      await home.dispose();
    }
  });
});
