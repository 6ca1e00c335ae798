// events.subscribe through a real daemon: a subscriber that joins mid-run with since 0 gets the
// history then the live events, every seq once, none missing; filters by type and task; a
// reader that never reads is cut off with events.error naming the last seq it got, and the
// daemon serves on.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { AtlasClient } from '../../src/client/client.js';
import type { AtlasEvent } from '../../src/events/event.js';
import { NOTIFY, type RpcNotification } from '../../src/protocol/protocol.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, waitFor } from '../helpers/daemon.js';

function waitSteps(n: number, name = 'many'): string {
  const lines = [`name: ${name}`, 'steps:'];
  for (let i = 0; i < n; i++) lines.push(`  - name: s${i}`, '    type: wait', '    duration: 0s');
  return lines.join('\n') + '\n';
}

test('events.subscribe: history then live, no gap, no duplicate; filters; a slow reader is cut off with its last seq', { timeout: 60_000 }, async () => {
  const h = new TestHome();
  try {
    h.writeTemplate('many', waitSteps(150));
    h.writeTemplate('few', waitSteps(3, 'few'));
    await h.startDaemon({ env: { ATLAS_EVENTS_MAX_BUFFERED: '16384', ATLAS_EVENTS_MAX_QUEUED: '50' } });
    await h.createWorkspaces(['w1']);
    const c = await h.client();
    const first = (await c.call('task.start', { template: 'few', workspace: 'w1' })) as TaskRecord;
    await c.call('task.wait', { id: first.id });

    // A slow reader: subscribes from now and never reads.
    const slow = net.connect(h.socketPath);
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'events.subscribe', params: {} }) + '\n');
    slow.pause();

    const t = (await c.call('task.start', { template: 'many', workspace: 'w1' })) as TaskRecord;
    // Join mid-run from the very start of the log.
    await waitFor('the task to be under way', async () => ((await c.call('task.get', { id: t.id })) as TaskRecord).current_step > 20);
    const got: AtlasEvent[] = [];
    const onlyFinished: AtlasEvent[] = [];
    const sub = await AtlasClient.connect(h.home, { onNotify: (n: RpcNotification) => n.method === NOTIFY.EVENT && got.push((n.params as { event: AtlasEvent }).event) });
    const sub2 = await AtlasClient.connect(h.home, { onNotify: (n: RpcNotification) => n.method === NOTIFY.EVENT && onlyFinished.push((n.params as { event: AtlasEvent }).event) });
    await sub.call('events.subscribe', { since: 0 });
    await sub2.call('events.subscribe', { since: 0, types: ['task.fin*'], task_id: t.id });
    await c.call('task.wait', { id: t.id });
    // task.wait answers once the task's events are durable: the log holds its task.finished.
    const last = ((await c.call('events.list', { since: 0, limit: 10_000 })) as { events: AtlasEvent[] }).events;
    assert.ok(last.some((e) => e.type === 'task.finished' && e.task_id === t.id), 'task.finished is in the log when task.wait answers');
    await waitFor('the subscriber to see every event', () => got.length >= last.length && onlyFinished.length >= 1);
    assert.deepEqual(got.map((e) => e.seq), last.map((e) => e.seq), 'every seq once, in order');
    assert.deepEqual(got, last);
    assert.deepEqual(onlyFinished.map((e) => [e.type, e.task_id]), [['task.finished', t.id]]);
    assert.equal(last.filter((e) => e.type === 'step.finished' && e.task_id === t.id).length, 150);
    sub.close();
    sub2.close();

    // The slow reader now reads what it was sent: consecutive events, then events.error naming the last of them.
    slow.resume();
    slow.setEncoding('utf8');
    let text = '';
    slow.on('data', (d: string) => (text += d));
    await new Promise<void>((r) => slow.once('close', () => r()));
    const msgs = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { method?: string; params?: { event?: AtlasEvent; last_seq?: number; code?: string } });
    const seqs = msgs.filter((m) => m.method === NOTIFY.EVENT).map((m) => m.params!.event!.seq);
    const err = msgs.find((m) => m.method === NOTIFY.EVENT_ERROR);
    assert.ok(err, 'the slow reader was cut off');
    assert.equal(err.params!.code, 'slow_subscriber');
    assert.equal(err.params!.last_seq, seqs.at(-1));
    seqs.forEach((s, i) => i > 0 && assert.equal(s, seqs[i - 1]! + 1));
    assert.ok(seqs.length < last.length, 'it was cut off before the end');
    // The daemon serves on.
    assert.ok((await c.call('daemon.ping')) as object);
  } finally {
    await h.dispose();
  }
});
