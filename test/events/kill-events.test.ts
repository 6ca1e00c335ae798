// Durable events under kill -9 (DESIGN §10): tasks of short steps run while the daemon is
// killed at random moments, and in every third cycle a daemon armed with the fault point
// ATLAS_FAULT_KILL_BEFORE_EVENTS kills itself in the exact window between a checkpoint and the
// write of its events. Afterwards the events log, read straight from its files, must hold for
// every step result in every task.json its step.finished event exactly once (and one event per
// transition), seqs 1..n without a gap, ids unique, each task's facts in order; the repair
// must really have run; and `atlas events --since N --json` must print exactly what follows N.
//
// Races of the test itself (seen under load) are closed: each plain kill waits for two more
// step results first (else a slow machine restarts daemons that finish no step); an armed
// daemon may kill itself before it first answers a ping (its engine runs tasks before it
// listens), which counts as a self-kill, not a failed start; and a task.json that says
// "completed" is renamed into place before the runner writes that checkpoint's events, so the
// log is read only once the last daemon has stopped.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { AtlasEvent } from '../../src/events/event.js';
import { factOf } from '../../src/events/event.js';
import type { TaskRecord } from '../../src/store/records.js';
import { call, cli, createWorkspaces, killHard, pidAlive, readTaskFiles, spawnDaemonRun, startTheDaemon, stopTheDaemon, waitFor, withSandbox, writeLineTemplate, type Sandbox } from '../recovery/harness.js';

const CRASHES = 21;

function readLog(sb: Sandbox): AtlasEvent[] {
  const dir = path.join(sb.home, 'events');
  const out: AtlasEvent[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) if (line) out.push(JSON.parse(line) as AtlasEvent);
  }
  return out;
}

function stepResults(sb: Sandbox): number {
  return readTaskFiles(sb).reduce((n, f) => n + (f.task?.step_results.length ?? 0), 0);
}

async function keepBusy(sb: Sandbox, tasks: Map<string, string>): Promise<void> {
  const open = new Set<string>();
  for (const f of readTaskFiles(sb)) if (f.task && ['pending', 'running'].includes(f.task.status)) open.add(f.workspace);
  for (const ws of Object.keys(sb.workspaces)) {
    if (open.has(ws)) continue;
    try {
      const t = (await call(sb, 'task.start', { template: 'ev', workspace: ws }, 2000)) as TaskRecord;
      tasks.set(t.id, ws);
    } catch {
      // the daemon died under us (an armed cycle): the next cycle starts it again
    }
  }
}

/** Starts a daemon armed with the fault point; its pid, or undefined if it killed itself before it answered. */
async function startArmed(sb: Sandbox): Promise<number | undefined> {
  process.env['ATLAS_FAULT_KILL_BEFORE_EVENTS'] = '0.2';
  let child;
  try {
    child = spawnDaemonRun(sb);
  } finally {
    delete process.env['ATLAS_FAULT_KILL_BEFORE_EVENTS'];
  }
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once('exit', (code, signal) => (exit = { code, signal }));
  const r = await waitFor<number | 'killed itself'>('the armed daemon to answer or kill itself', async () => {
    if (exit?.signal === 'SIGKILL') return 'killed itself';
    if (exit) throw new Error(`the armed daemon exited (${exit.code ?? exit.signal}): ${fs.readFileSync(path.join(sb.root, 'daemon-stderr.log'), 'utf8').slice(-2000)}`);
    try {
      return ((await call(sb, 'daemon.ping', {}, 1000)) as { pid: number }).pid;
    } catch {
      return false;
    }
  }, 30_000, 25);
  return r === 'killed itself' ? undefined : r;
}

test('events under 21 kill -9s: every finished step has its step.finished once, seqs without gaps, --since replays exactly', { timeout: 300_000 }, async () => {
  await withSandbox({ workspaces: ['w1', 'w2', 'w3'] }, async (sb) => {
    writeLineTemplate(sb, 'ev', 8, { sleepSeconds: 0.01 });
    const tasks = new Map<string, string>();
    let pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    let selfKills = 0;
    for (let i = 0; i < CRASHES; i++) {
      await keepBusy(sb, tasks);
      if (i % 3 === 2) {
        // Armed: the daemon dies by its own hand between a checkpoint and its events.
        await killHard(pid);
        const armed = await startArmed(sb);
        if (armed !== undefined) {
          await keepBusy(sb, tasks);
          await waitFor('the armed daemon to kill itself', async () => {
            if (!pidAlive(armed)) return true;
            await keepBusy(sb, tasks);
            return false;
          }, 60_000, 50);
        }
        selfKills++;
      } else {
        // Some progress before each kill (a loaded machine starts daemons slowly), then a random moment.
        const before = stepResults(sb);
        await waitFor('two more step results', async () => {
          if (stepResults(sb) >= before + 2) return true;
          await keepBusy(sb, tasks);
          return false;
        }, 60_000, 20);
        await sleep(Math.random() * 300);
        await killHard(pid);
      }
      pid = await startTheDaemon(sb);
    }
    await waitFor('every task to finish', () => readTaskFiles(sb).every((f) => f.task && !['pending', 'running'].includes(f.task.status)), 90_000, 100);
    // The last checkpoint's events are written just after its task.json: stop the daemon
    // (it drains and closes the log) before the files are read.
    await stopTheDaemon(sb, pid);

    const files = readTaskFiles(sb);
    assert.ok(files.every((f) => f.task), 'every task.json parses');
    const events = readLog(sb);
    // seqs 1..n, no gap, no repeat; ids unique.
    events.forEach((e, i) => assert.equal(e.seq, i + 1, `seq ${e.seq} at position ${i + 1}`));
    const byId = new Map<string, AtlasEvent[]>();
    for (const e of events) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
    const dup = [...byId.entries()].filter(([, v]) => v.length > 1).map(([k]) => k);
    assert.deepEqual(dup, [], 'duplicate event ids');

    let results = 0;
    for (const f of files) {
      const t = f.task!;
      t.step_results.forEach((r, i) => {
        results++;
        const got = byId.get(`${t.id}.r${i}`) ?? [];
        assert.equal(got.length, 1, `${t.id}: step result ${i} (${r.step_name} attempt ${r.attempt}) has ${got.length} step.finished events`);
        const e = got[0]!;
        assert.equal(e.type, 'step.finished');
        assert.equal(e.data['attempt'], r.attempt);
        assert.equal(e.data['status'], r.status);
        assert.equal(e.data['step'], r.step_name);
      });
      t.transitions.forEach((tr, i) => {
        const got = byId.get(`${t.id}.t${i}`) ?? [];
        assert.equal(got.length, 1, `${t.id}: transition ${i} (${tr.from_status} -> ${tr.to_status}) has ${got.length} events`);
      });
      assert.equal((byId.get(`${t.id}.t${t.transitions.length - 1}.finished`) ?? []).length, 1, `${t.id}: one task.finished`);
      // A task's facts are in the log in the order they happened.
      let lastR = -1;
      let lastT = -1;
      for (const e of events.filter((x) => x.task_id === t.id)) {
        const fact = factOf(e.id);
        if (!fact) continue;
        if (fact.kind === 'r') {
          assert.ok(fact.index > lastR, `${t.id}: result events out of order at ${e.id}`);
          lastR = fact.index;
        } else if (!e.id.includes('.t' + fact.index + '.')) {
          assert.ok(fact.index > lastT, `${t.id}: transition events out of order at ${e.id}`);
          lastT = fact.index;
        }
      }
    }
    const finished = events.filter((e) => e.type === 'step.finished');
    assert.equal(finished.length, results, 'no step.finished event without its step result');
    assert.ok(results >= 30, `too few steps finished (${results})`);
    assert.ok(selfKills >= 6, 'the armed daemons did not kill themselves');
    const daemonLog = fs.readFileSync(path.join(sb.home, 'logs', 'daemon.log'), 'utf8');
    assert.match(daemonLog, /event\(s\) a crash had cut off/, 'the repair never had anything to do: the test proved nothing');

    // --since N replays exactly what follows N.
    pid = await startTheDaemon(sb);
    for (const n of [0, Math.floor(events.length / 3), events.length - 5, events.length]) {
      const r = cli(sb, ['events', '--since', String(n), '--json']);
      assert.equal(r.status, 0, r.stderr);
      const printed = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AtlasEvent);
      assert.deepEqual(printed, events.slice(n), `events --since ${n}`);
    }
    console.log(`# ${CRASHES} crashes (${selfKills} in the checkpoint-to-events window), ${files.length} tasks, ${results} step results, ${events.length} events`);
    await stopTheDaemon(sb, pid);
  });
});
