// The daemon's lifecycle through the CLI (DESIGN §5, §7): status without a daemon exits 3,
// start/second start/stop, status --json, the modes of the home and the socket, and a
// command that needs the daemon starting it (and saying so on stderr).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TASK_STATUSES } from '../../src/store/records.js';
import { VERSION } from '../../src/version.js';
import { TestHome, portableCli, assertGone, expectExit, homeProcesses, isGone, parseStdout, socketAnswers, waitFor } from '../helpers/daemon.js';

describe('daemon lifecycle', () => {
  let h: TestHome;
  let pid = 0;

  before(() => {
    h = new TestHome();
  });
  after(async () => {
    await h.dispose();
  });

  test('daemon status with no daemon exits 3 (and --json says it is not running)', async () => {
    const r = expectExit(await h.cli(['daemon', 'status']), 3);
    assert.match(r.stderr, /not running/);
    assert.equal(r.stdout, '');
    const j = expectExit(await h.cli(['daemon', 'status', '--json']), 3);
    assert.deepEqual(parseStdout(j), { running: false, home: h.home });
  });

  test('daemon stop with no daemon exits 0 and says so', async () => {
    const r = expectExit(await h.cli(['daemon', 'stop']), 0);
    assert.match(r.stderr, /not running/);
    assert.deepEqual(parseStdout(expectExit(await h.cli(['daemon', 'stop', '--json']), 0)), { stopped: false, running: false });
  });

  test('daemon start starts one; a second start says one is running and exits 0', async () => {
    const r = expectExit(await h.cli(['daemon', 'start']), 0);
    const m = /started the atlas daemon \(pid (\d+)\)/.exec(r.stdout);
    assert.ok(m, `no pid in: ${r.stdout}`);
    pid = Number(m[1]);
    assert.equal(isGone(pid), false);
    assert.deepEqual(homeProcesses(h.home), [pid]);

    const again = expectExit(await h.cli(['daemon', 'start']), 0);
    assert.match(again.stderr, new RegExp(`already running \\(pid ${pid}\\)`));
    const j = parseStdout<{ pid: number; already_running: boolean; version: string; home: string }>(expectExit(await h.cli(['daemon', 'start', '--json']), 0));
    assert.deepEqual(j, { pid, version: VERSION, home: h.home, already_running: true });
    // Still exactly one daemon for this home.
    assert.deepEqual(homeProcesses(h.home), [pid]);
  });

  test('daemon status --json: pid, version, home, uptime_ms, tasks_by_status', async () => {
    const s = await h.json<Record<string, unknown>>(['daemon', 'status']);
    assert.equal(s['running'], true);
    assert.equal(s['pid'], pid);
    assert.equal(s['version'], VERSION);
    assert.equal(s['home'], h.home);
    assert.equal(s['socket'], h.socketPath);
    assert.equal(typeof s['uptime_ms'], 'number');
    assert.ok((s['uptime_ms'] as number) >= 0);
    const counts = s['tasks_by_status'] as Record<string, number>;
    assert.deepEqual(Object.keys(counts).sort(), [...TASK_STATUSES].sort());
    for (const n of Object.values(counts)) assert.equal(n, 0);
    const text = expectExit(await h.cli(['daemon', 'status']), 0);
    assert.match(text.stdout, new RegExp(`pid ${pid}`));
    assert.match(text.stdout, new RegExp(`home\\s+${h.home.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  test('daemon.pid holds the pid alone (kill $(cat daemon.pid), PIDFile=); daemon.json the rest', () => {
    assert.equal(fs.readFileSync(path.join(h.home, 'daemon.pid'), 'utf8'), `${pid}\n`);
    const owner = JSON.parse(fs.readFileSync(path.join(h.home, 'daemon.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(owner['pid'], pid);
    assert.equal(owner['version'], VERSION);
    assert.equal(owner['socket'], h.socketPath);
    assert.ok(typeof owner['start_ticks'] === 'number' || owner['start_ticks'] === null);
    assert.equal(fs.statSync(path.join(h.home, 'daemon.json')).mode & 0o777, 0o600);
  });

  test('the home is 0700, the socket 0600, the pid file 0600', () => {
    assert.equal(fs.statSync(h.home).mode & 0o777, 0o700);
    const sock = fs.statSync(path.join(h.home, 'atlas.sock'));
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(h.home, 'daemon.pid')).mode & 0o777, 0o600);
  });

  test('a socket this user may not open: exit 3, no daemon started in its place', async () => {
    const sock = path.join(h.home, 'atlas.sock');
    // Root may open any socket: then the CLI runs as nobody (65534), for whom the 0700 home
    // and the 0600 socket are out of reach; otherwise the socket's mode is taken away.
    const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!asRoot) fs.chmodSync(sock, 0o000);
    // As nobody, the CLI runs from a bundle in a world-readable place, not from the checkout.
    const portable = asRoot ? await portableCli() : undefined;
    const other = portable ? { uid: 65534, gid: 65534, cliPath: portable.path } : {};
    try {
      // Neither 'not running' nor a second daemon: the one that runs is out of reach.
      for (const args of [['workspace', 'list'], ['daemon', 'status'], ['daemon', 'stop'], ['daemon', 'start']]) {
        const r = expectExit(await h.cli(args, other), 3);
        assert.match(r.stderr, /permission denied on .*atlas\.sock/, `atlas ${args.join(' ')}`);
        assert.equal(r.stdout, '');
        assert.doesNotMatch(r.stderr, /started the daemon|not running/);
      }
      assert.deepEqual(homeProcesses(h.home), [pid]);
    } finally {
      portable?.dispose();
      if (!asRoot) fs.chmodSync(sock, 0o600);
    }
  });

  test('daemon stop: exit 0, its pid is gone, the socket is removed, status exits 3 again', async () => {
    const r = expectExit(await h.cli(['daemon', 'stop']), 0);
    assert.match(r.stdout, new RegExp(`stopped the atlas daemon \\(pid ${pid}\\)`));
    await assertGone(pid, 'the daemon');
    assert.equal(fs.existsSync(path.join(h.home, 'atlas.sock')), false);
    assert.equal(fs.existsSync(path.join(h.home, 'daemon.pid')), false);
    assert.equal(fs.existsSync(path.join(h.home, 'daemon.json')), false);
    assert.equal(await socketAnswers(h.socketPath), false);
    expectExit(await h.cli(['daemon', 'status']), 3);
  });

  test('a command that needs the daemon starts it and says so on stderr; stdout stays pure JSON', async () => {
    const r = expectExit(await h.cli(['workspace', 'list', '--json']), 0);
    assert.deepEqual(parseStdout(r), []);
    const m = /started the daemon \(pid (\d+)\)/.exec(r.stderr);
    assert.ok(m, `stderr does not say the daemon was started: ${r.stderr}`);
    const started = Number(m[1]);
    const s = await h.json<{ pid: number }>(['daemon', 'status']);
    assert.equal(s.pid, started);
    // A second command finds it running and says nothing about starting one.
    const again = expectExit(await h.cli(['workspace', 'list']), 0);
    assert.doesNotMatch(again.stderr, /started the daemon/);
    await h.stopDaemon();
  });

  test('five commands at once with no daemon: one daemon starts, all five succeed', async () => {
    const runs = await Promise.all(Array.from({ length: 5 }, () => h.cli(['list', '--json'])));
    for (const r of runs) assert.deepEqual(parseStdout(expectExit(r, 0)), []);
    const starters = runs.filter((r) => /started the daemon/.test(r.stderr));
    assert.equal(starters.length, 1, runs.map((r) => r.stderr).join('\n'));
    const pid = Number(/pid (\d+)/.exec(starters[0]!.stderr)?.[1]);
    // The daemons the other four spawned find the lock held and exit.
    await waitFor(`only daemon ${pid} to be left`, () => homeProcesses(h.home).join() === String(pid));
    assert.equal((await h.json<{ pid: number }>(['daemon', 'status'])).pid, pid);
    await h.stopDaemon();
  });
});
