// One client cannot take the daemon down (issue 9 item 8): idle connections at the cap give
// way to a new one, a client that pipelines requests without reading the replies is read no
// further (the daemon's memory stays bounded), and a follower never starts a stopped daemon
// (item 2). Plus task.logs paging (item 9).
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MAX_CONNECTIONS } from '../../src/protocol/protocol.js';
import { TestHome, expectExit, isGone, waitFor } from '../helpers/daemon.js';
import { RawSocket } from '../helpers/raw-socket.js';

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('socket limits', () => {
  let h: TestHome;
  let pid = 0;
  before(async () => {
    h = new TestHome({ templates: ['three', 'sleeper'] });
    pid = await h.startDaemon();
    await h.createWorkspaces(['w']);
  });
  after(async () => {
    await h.dispose();
  });

  test(`${MAX_CONNECTIONS} idle connections do not lock the CLI out`, async () => {
    const idle: RawSocket[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) idle.push(await RawSocket.connect(h.socketPath));
      const r = await h.cli(['daemon', 'status', '--json']);
      expectExit(r, 0);
    } finally {
      for (const s of idle) s.close();
    }
  });

  test('a client that never reads its replies is read no further: the daemon stays small and answers others', async () => {
    const before = rssOf(pid);
    const flood = net.connect(h.socketPath);
    flood.on('error', () => undefined);
    await new Promise((r) => flood.once('connect', r));
    flood.pause(); // never read a reply
    const line = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'daemon.status' }) + '\n';
    const batch = line.repeat(1000);
    for (let i = 0; i < 150; i++) flood.write(batch); // 150k requests, each reply ~1 KB
    try {
      // While the flood waits, others are served and the daemon's memory stays bounded.
      expectExit(await h.cli(['daemon', 'status', '--json']), 0);
      // It stopped reading: most of the flood (8 MB of requests) still waits on this side.
      assert.ok(flood.writableLength > 4 * 1024 * 1024, `only ${flood.writableLength} bytes of the flood still queued: the daemon kept reading`);
      let peak = rssOf(pid);
      for (let i = 0; i < 3; i++) {
        expectExit(await h.cli(['daemon', 'status', '--json']), 0);
        peak = Math.max(peak, rssOf(pid));
      }
      // Read and answered whole, the flood's replies alone would be ~150 MB.
      assert.ok(peak - before < 100 * 1024 * 1024, `the daemon grew by ${Math.round((peak - before) / 1048576)} MB`);
    } finally {
      flood.destroy();
    }
  });

  test('task.logs pages by offset; an unknown --step is not found', async () => {
    const t = await h.json<{ id: string }>(['start', 'three', '-w', 'w', '--json']);
    await h.waitSettled(t.id);
    const c = await h.client();
    const whole = await c.call('task.logs', { id: t.id });
    assert.equal(whole.more, false);
    const pages: unknown[] = [];
    let offset = 0;
    for (let i = 0; i < 1000; i++) {
      const p = await c.call('task.logs', { id: t.id, offset, limit: 2 });
      assert.ok(p.records.length <= 2);
      pages.push(...p.records);
      if (!p.more) break;
      assert.ok(p.next_offset > offset);
      offset = p.next_offset;
    }
    assert.ok(whole.records.length > 4);
    assert.deepEqual(pages, whole.records);
    const tail = await c.call('task.logs', { id: t.id, tail: 2 });
    assert.deepEqual(tail.records, whole.records.slice(-2));
    const r = await h.cli(['logs', t.id, '--step', 'nosuch']);
    expectExit(r, 4);
    assert.match(r.stderr, /no step nosuch/);
  });

  test('daemon stop is not undone by an attached follower: it waits, and carries on when the daemon is started again', async () => {
    const t = await h.json<{ id: string }>(['start', 'sleeper', '-w', 'w', '--json']);
    const follower = h.spawn(['logs', t.id, '-f']);
    await waitFor('the follower to attach', () => follower.peek().stdout.length + follower.peek().stderr.length > 0 || undefined);
    await h.stopDaemon();
    await waitFor('the follower to notice', () => /lost the daemon/.test(follower.peek().stderr));
    // A follower that started a daemon did so within a retry (300 ms) and a start: give it
    // several times that, and the daemon must still be down.
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      assert.equal(fs.existsSync(h.socketPath) && (await answers(h.socketPath)), false, 'the follower started the daemon again');
      await sleep(100);
    }
    assert.doesNotMatch(follower.peek().stderr, /started the daemon/);
    pid = await h.startDaemon();
    await waitFor('the follower to reconnect', () => /reconnected/.test(follower.peek().stderr));
    await h.cli(['cancel', t.id]);
    const r = await follower.result;
    assert.notEqual(r.code, null);
    assert.ok(!isGone(pid));
  });
});

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
