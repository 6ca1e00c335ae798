// A home whose socket path would pass the Unix limit (DESIGN §5): daemon and client both use
// the hashed fallback path, the socket is 0600 in a 0700 directory, tasks run, and the
// daemon restarts over its own stale fallback socket after a kill -9.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, homeProcesses, parseStdout, waitFor } from '../helpers/daemon.js';

describe('a home path longer than the socket limit', () => {
  let h: TestHome;

  before(() => {
    h = new TestHome({ homeRelative: path.join('a'.repeat(60), 'b'.repeat(60)), templates: ['quick'] });
  });
  after(async () => {
    await h.dispose();
  });

  test('the daemon listens on the hashed fallback socket, 0600 in a 0700 directory', async () => {
    assert.ok(h.home.length > 110, `home is only ${h.home.length} characters`);
    const socket = h.socketPath;
    assert.notEqual(socket, path.join(h.home, 'atlas.sock'));
    assert.ok(!socket.startsWith(h.home));
    assert.ok(Buffer.byteLength(socket) <= 100);

    await h.startDaemon();
    const st = fs.statSync(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
    assert.equal(fs.statSync(h.home).mode & 0o777, 0o700);
    assert.equal(fs.existsSync(path.join(h.home, 'atlas.sock')), false);

    const s = await h.json<{ socket: string; home: string }>(['daemon', 'status']);
    assert.equal(s.socket, socket);
    assert.equal(s.home, h.home);
  });

  test('tasks run through it', async () => {
    await h.ok(['workspace', 'create', 'ws', '--path', h.dir('ws')]);
    const r = expectExit(await h.cli(['start', 'quick', '-w', 'ws', '--wait', '--json']), 0);
    assert.equal(parseStdout<TaskRecord>(r).status, 'completed');
  });

  test('after kill -9, daemon start replaces the stale fallback socket', async () => {
    const oldPid = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
    process.kill(oldPid, 'SIGKILL');
    await waitFor('the killed daemon to exit', () => !homeProcesses(h.home).includes(oldPid));
    assert.ok(fs.existsSync(h.socketPath), 'the killed daemon left its socket');
    const started = parseStdout<{ pid: number; already_running: boolean }>(expectExit(await h.cli(['daemon', 'start', '--json'], { timeoutMs: 30_000 }), 0));
    assert.equal(started.already_running, false);
    assert.notEqual(started.pid, oldPid);
    assert.equal(fs.statSync(h.socketPath).mode & 0o777, 0o600);
    const r = expectExit(await h.cli(['start', 'quick', '-w', 'ws', '--wait', '--json']), 0);
    assert.equal(parseStdout<TaskRecord>(r).status, 'completed');
  });

  test('daemon stop removes the fallback socket', async () => {
    await h.stopDaemon();
    assert.equal(fs.existsSync(h.socketPath), false);
    expectExit(await h.cli(['daemon', 'status']), 3);
  });
});
