// Takeover between daemons on one database (DESIGN §9):
//  - kill -9 of a daemon mid-step, repeatedly: another daemon claims its tasks within
//    seconds (its session lock is free at once); finished steps never re-run, interrupted
//    steps re-run, no task is lost or stuck; the takeover time is measured;
//  - a partitioned owner (SIGSTOP past the TTL): another daemon takes over after the lease
//    expires; on SIGCONT its next write is refused by the epoch check and it stops its step.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { isGone, waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { APPEND_TEMPLATE, ClusterHomes, readAppends } from './helpers.js';

const db = await fileDatabase('takeover');
const skip = db.skip;

const KILLS = Number(process.env['ATLAS_TAKEOVER_KILLS'] ?? 3);

function daemonPid(home: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(home, 'daemon.pid'), 'utf8').trim());
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function daemonIdOf(home: string): string {
  return fs.readFileSync(path.join(home, 'daemon.id'), 'utf8').trim();
}

test(`kill -9 of a daemon mid-step, ${KILLS} times: the others take over within seconds; nothing lost, stuck or finished twice`, { skip, timeout: 300_000 }, async () => {
  const workspaces = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
  const c = new ClusterHomes({ url: db.url, schema: 'kills', workspaces, ttl: '15s' }, 3, APPEND_TEMPLATE(4, '0.4'));
  const takeovers: number[] = [];
  try {
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    const a = c.homes[0]!;
    for (const ws of workspaces) await a.ok(['workspace', 'create', ws, '--path', a.dir(ws)]);
    const log = path.join(a.root, 'appends.log');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await a.json<TaskRecord>(['start', 'append', '-w', workspaces[i % workspaces.length]!, '-i', `log=${log}`])).id);

    for (let k = 0; k < KILLS; k++) {
      // Fresh work for every round, so there is always a step to cut off.
      for (const ws of workspaces) ids.push((await a.json<TaskRecord>(['start', 'append', '-w', ws, '-i', `log=${log}`])).id);
      // A daemon with a step running (its process recorded), at a random point of that step.
      const victim = await waitFor(
        'a daemon with a running step',
        async () => {
          const rows = await c.query<{ id: string; owner: string; data: string }>(`SELECT id, owner, data FROM tasks WHERE owner IS NOT NULL AND status = 'running'`);
          for (const r of rows) {
            const t = JSON.parse(r.data) as TaskRecord;
            const step = t.steps[t.current_step];
            if (step?.status === 'running' && step.process) {
              const home = c.homes.find((h) => fs.existsSync(path.join(h.home, 'daemon.id')) && daemonIdOf(h.home) === r.owner);
              if (home) return { task: r.id, owner: r.owner, home };
            }
          }
          return undefined;
        },
        60_000,
        20,
      ).catch(async (err: unknown) => {
        const rows = await c.query('SELECT id, owner, lease_epoch, lease_until > now() AS live, status, workspace FROM tasks ORDER BY id');
        const logs = c.homes.map((h) => fs.readFileSync(path.join(h.home, 'logs', 'daemon.log'), 'utf8').slice(-2500)).join('\n----\n');
        throw new Error(`${(err as Error).message}\n${JSON.stringify(rows)}\n${JSON.stringify(await c.query('SELECT id, pid, heartbeat_at, stopped_at FROM daemons'))}\n${logs}`);
      });
      await sleep(Math.floor(Math.random() * 300));
      const pid = daemonPid(victim.home.home);
      assert.ok(pid, 'the victim has a pid file');
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      // Takeover: some task the victim held is owned by another daemon again.
      await waitFor(
        `task ${victim.task} to be taken over from ${victim.owner}`,
        async () => {
          const rows = await c.query<{ owner: string | null; status: string }>('SELECT owner, status FROM tasks WHERE id = $1', [victim.task]);
          const r = rows[0];
          return r && ((r.owner !== null && r.owner !== victim.owner) || r.status === 'completed') ? true : undefined;
        },
        30_000,
        10,
      );
      takeovers.push(Date.now() - killedAt);
      await waitFor('the killed daemon to be gone', () => isGone(pid), 10_000);
      await victim.home.startDaemon();
    }
    const counts = await c.waitAllSettled(ids.length, 240_000);
    assert.deepEqual(counts, { completed: ids.length }, 'no task lost or stuck');
    const lines = readAppends(log);
    for (const id of ids) {
      const t = (await c.query<{ data: string }>('SELECT data FROM tasks WHERE id = $1', [id]))[0]!;
      const task = JSON.parse(t.data) as TaskRecord;
      for (const s of ['s1', 's2', 's3', 's4']) {
        assert.equal(task.step_results.filter((r) => r.step_name === s && r.status === 'completed').length, 1, `${id} ${s}: one finished run`);
        const attempts = task.steps.find((x) => x.name === s)!.attempts;
        const done = lines.filter(([ti, st, ph]) => ti === id && st === s && ph === 'done').length;
        assert.ok(done >= 1 && done <= attempts, `${id} ${s}: ${done} finished run(s) of ${attempts} attempt(s)`);
      }
    }
    takeovers.sort((x, y) => x - y);
    console.log(`# takeover after kill -9 (ms): ${takeovers.join(', ')}; p50 ${takeovers[Math.floor(takeovers.length / 2)]}`);
    fs.writeFileSync(path.join(process.env['ATLAS_TAKEOVER_OUT'] ?? path.join(a.root, 'takeover.json')), JSON.stringify(takeovers));
  } finally {
    await c.dispose();
  }
});

test('a SIGSTOPped owner past its TTL is taken over, then fenced on SIGCONT: one finished run of each step', { skip, timeout: 120_000 }, async () => {
  const c = new ClusterHomes({ url: db.url, schema: 'stopped', workspaces: ['p1'], ttl: '2s' }, 2, APPEND_TEMPLATE(2, '4'));
  const [h0, h1] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0]];
  let stoppedPid: number | undefined;
  try {
    await Promise.all([h0.startDaemon(), h1.startDaemon()]);
    await h0.ok(['workspace', 'create', 'p1', '--path', h0.dir('p1')]);
    const log = path.join(h0.root, 'appends.log');
    const id = (await h0.json<TaskRecord>(['start', 'append', '-w', 'p1', '-i', `log=${log}`])).id;
    await waitFor('the first step to run', () => readAppends(log).some(([t, s, ph]) => t === id && s === 's1' && ph === 'start'), 30_000);
    // Whichever daemon runs it is the one that vanishes.
    const ownerId = (await c.query<{ owner: string }>('SELECT owner FROM tasks WHERE id = $1', [id]))[0]!.owner;
    const [a, b] = daemonIdOf(h0.home) === ownerId ? [h0, h1] : [h1, h0];
    stoppedPid = daemonPid(a.home)!;
    const aId = daemonIdOf(a.home);
    const stoppedAt = Date.now();
    process.kill(stoppedPid, 'SIGSTOP');
    const bId = daemonIdOf(b.home);
    await waitFor(
      'B to take the task over once the lease expired',
      async () => ((await c.query<{ owner: string | null }>('SELECT owner FROM tasks WHERE id = $1', [id]))[0]?.owner === bId ? true : undefined),
      30_000,
      20,
    );
    const tookMs = Date.now() - stoppedAt;
    process.kill(stoppedPid, 'SIGCONT');
    stoppedPid = undefined;
    const counts = await c.waitAllSettled(1, 60_000);
    assert.deepEqual(counts, { completed: 1 });
    const task = JSON.parse((await c.query<{ data: string }>('SELECT data FROM tasks WHERE id = $1', [id]))[0]!.data) as TaskRecord;
    for (const s of ['s1', 's2']) assert.equal(task.step_results.filter((r) => r.step_name === s && r.status === 'completed').length, 1, `${s}: one finished run`);
    // A learnt that it lost the lease and wrote nothing more for the task.
    await waitFor('A to report the lost lease', () => /lost the lease on task|no longer holds its lease/.test(fs.readFileSync(path.join(a.home, 'logs', 'daemon.log'), 'utf8')), 20_000);
    const aDone = readAppends(log).filter(([t, , ph, home]) => t === id && ph === 'done' && home === a.home);
    assert.ok(aDone.length <= 1, 'A finished at most the step it had started');
    console.log(`# takeover of a stopped (partitioned) owner with lease_ttl 2s: ${tookMs} ms; owner ${aId} fenced`);
  } finally {
    if (stoppedPid) process.kill(stoppedPid, 'SIGCONT');
    await c.dispose();
  }
});
