// A killed daemon leaves its pid file, its lock and its socket behind (DESIGN §5): the next
// `atlas daemon start` must see that their owner is dead and start at once, not wait for the
// lock to go stale (10 s). The lock's mtime is refreshed just before each start, so only the
// dead-owner check can explain a start inside that window.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { processStartTicks } from '../../src/util/proc.js';
import { cli, killHard, pidAlive, recordedDaemonPid, stopTheDaemon, waitFor, withSandbox, type Sandbox } from './harness.js';

const LOCK_STALE_MS = 10_000;

function startViaCli(sb: Sandbox): { pid: number; already: boolean; ms: number } {
  const t0 = Date.now();
  const r = cli(sb, ['daemon', 'start', '--json']);
  const ms = Date.now() - t0;
  assert.equal(r.status, 0, `daemon start failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { pid: number; already_running: boolean };
  sb.pids.add(out.pid);
  return { pid: out.pid, already: out.already_running, ms };
}

function freshen(file: string): void {
  const now = new Date();
  fs.utimesSync(file, now, now);
}

test('after kill -9 the stale pid file, lock and socket are replaced and the daemon starts at once', { timeout: 60_000 }, async () => {
  await withSandbox({}, async (sb) => {
    const first = startViaCli(sb);
    assert.equal(first.already, false);
    const again = startViaCli(sb);
    assert.deepEqual([again.already, again.pid], [true, first.pid], 'a second start finds the running daemon');

    await killHard(first.pid);
    const pidFile = path.join(sb.home, 'daemon.pid');
    const lock = path.join(sb.home, 'daemon.lock');
    const sock = path.join(sb.home, 'atlas.sock');
    const ownerFile = path.join(sb.home, 'daemon.json');
    for (const f of [pidFile, ownerFile, lock, sock]) assert.ok(fs.existsSync(f), `${f} should be left behind by a kill -9`);
    assert.equal(recordedDaemonPid(sb), first.pid);

    freshen(lock);
    const second = startViaCli(sb);
    assert.equal(second.already, false);
    assert.notEqual(second.pid, first.pid);
    assert.ok(second.ms < LOCK_STALE_MS - 1000, `the start took ${second.ms} ms: it waited for the lock to go stale`);
    assert.equal(recordedDaemonPid(sb), second.pid);
    const status = cli(sb, ['daemon', 'status', '--json']);
    assert.equal(status.status, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { pid: number }).pid, second.pid);

    await stopTheDaemon(sb, second.pid);
    assert.equal(pidAlive(second.pid), false);
    for (const f of [pidFile, ownerFile, sock]) assert.equal(fs.existsSync(f), false, `${f} should be removed by a clean stop`);
  });
});

test('a pid file naming a live but different process (a reused pid), a fresh lock and a dead socket do not block a start', { timeout: 60_000 }, async () => {
  await withSandbox({}, async (sb) => {
    // A socket file whose listener was killed: connecting to it is refused.
    const sock = path.join(sb.home, 'atlas.sock');
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`the socket holder exited (${code})`)));
    });
    await killHard(holder.pid!);
    await waitFor('the socket holder to be reaped', () => holder.exitCode !== null || holder.signalCode !== null, 5000);
    assert.ok(fs.statSync(sock).isSocket());
    // As a killed daemon leaves it: its sockets are 0600 (one open to others is refused, socket-trust.test).
    fs.chmodSync(sock, 0o600);
    // This very process is alive, but it is not the daemon that took the lock: its start time differs.
    const ticks = processStartTicks(process.pid);
    fs.writeFileSync(path.join(sb.home, 'daemon.json'), JSON.stringify({ pid: process.pid, start_ticks: (ticks ?? 0) + 12345, version: '0.0.0', socket: sock, started_at: new Date().toISOString() }) + '\n');
    fs.writeFileSync(path.join(sb.home, 'daemon.pid'), `${process.pid}\n`);
    fs.mkdirSync(path.join(sb.home, 'daemon.lock'));
    freshen(path.join(sb.home, 'daemon.lock'));

    const r = startViaCli(sb);
    assert.equal(r.already, false);
    assert.notEqual(r.pid, process.pid);
    assert.ok(r.ms < LOCK_STALE_MS - 1000, `the start took ${r.ms} ms: it waited for the lock to go stale`);
    const ping = cli(sb, ['daemon', 'status', '--json']);
    assert.equal((JSON.parse(ping.stdout) as { pid: number }).pid, r.pid);
    await stopTheDaemon(sb, r.pid);
    assert.equal(pidAlive(r.pid), false);
  });
});
