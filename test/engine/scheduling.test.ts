// Scheduling: at most max_concurrent_tasks tasks run at once; tasks of one workspace never
// overlap; within a workspace higher priority goes first, then first come first served.
// Each task records start/end times (ns) in its own file, and the checks are made on those.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { settle, shq, withEnv, writeTemplate, type TestEnv } from './helpers.js';

interface Interval {
  id: string;
  ws: string;
  start: bigint;
  end: bigint;
}

/** A template whose one step records "start <ns>" and "end <ns>" into <times>/<task-id>. */
function timedTemplate(env: TestEnv, times: string, name = 'timed'): void {
  writeTemplate(env, {
    name,
    steps: [
      {
        name: 'work',
        type: 'shell',
        timeout: '20s',
        run: `f=${shq(times)}/"$ATLAS_TASK_ID"; echo "start $(date +%s%N) $ATLAS_WORKSPACE" > "$f"; sleep 0.15; echo "end $(date +%s%N)" >> "$f"`,
      },
    ],
  });
}

function readIntervals(times: string): Interval[] {
  return fs.readdirSync(times).map((id) => {
    const [first, second] = fs.readFileSync(path.join(times, id), 'utf8').trim().split('\n');
    const [, start, ws] = first!.split(' ');
    const [, end] = second!.split(' ');
    return { id, ws: ws!, start: BigInt(start!), end: BigInt(end!) };
  });
}

function maxOverlap(intervals: Interval[]): number {
  const points = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  // Ends sort before starts at the same instant.
  points.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.d - b.d));
  let now = 0;
  let max = 0;
  for (const p of points) {
    now += p.d;
    max = Math.max(max, now);
  }
  return max;
}

test('scheduling: max_concurrent_tasks is respected and tasks of one workspace never overlap', async () => {
  await withEnv({ config: { max_concurrent_tasks: 2 } }, async (env) => {
    const times = path.join(env.root, 'times');
    fs.mkdirSync(times);
    timedTemplate(env, times);
    const names = ['wa', 'wb', 'wc'];
    for (const n of names) {
      fs.mkdirSync(path.join(env.root, n));
      await env.engine.store.workspaces.create({ name: n, path: path.join(env.root, n), kind: 'path', repo: null, branch: null });
    }
    const ids: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const n of names) ids.push((await env.engine.startTask({ template: 'timed', workspace: n })).id);
    }
    // While they run, the engine itself never reports more than 2 running.
    let maxRunning = 0;
    const onTask = () => (maxRunning = Math.max(maxRunning, env.engine.runningCount));
    env.engine.on('task', onTask);
    for (const id of ids) assert.equal((await settle(env.engine, id, 60_000)).status, 'completed');
    env.engine.off('task', onTask);
    assert.ok(maxRunning <= 2, `the engine ran ${maxRunning} tasks at once`);

    const intervals = readIntervals(times);
    assert.equal(intervals.length, 9);
    for (const i of intervals) assert.ok(i.start < i.end);
    assert.ok(maxOverlap(intervals) <= 2, `${maxOverlap(intervals)} tasks overlapped`);
    for (const n of names) {
      const mine = intervals.filter((i) => i.ws === n);
      assert.equal(mine.length, 3);
      assert.equal(maxOverlap(mine), 1, `tasks of workspace ${n} overlapped`);
      // ...and they ran in the order they were started.
      const byStart = [...mine].sort((a, b) => (a.start < b.start ? -1 : 1)).map((i) => i.id);
      assert.deepEqual(byStart, ids.filter((_, k) => names[k % 3] === n));
    }
  });
});

test('scheduling: tasks of different workspaces do run at the same time', async () => {
  // Two tasks that each wait for the other to have started: they can only finish if the
  // engine runs them concurrently (a deadlock would hit the 10s bound instead).
  await withEnv({ config: { max_concurrent_tasks: 2 } }, async (env) => {
    const meet = path.join(env.root, 'meet');
    fs.mkdirSync(meet);
    writeTemplate(env, {
      name: 'meet',
      inputs: { me: { required: true }, other: { required: true } },
      steps: [{ name: 'meet', type: 'shell', timeout: '10s', run: `touch ${shq(meet)}/"$ATLAS_INPUT_ME"; until [ -f ${shq(meet)}/"$ATLAS_INPUT_OTHER" ]; do sleep 0.02; done` }],
    });
    fs.mkdirSync(path.join(env.root, 'other'));
    await env.engine.store.workspaces.create({ name: 'other', path: path.join(env.root, 'other'), kind: 'path', repo: null, branch: null });
    const a = await env.engine.startTask({ template: 'meet', workspace: env.wsName, inputs: { me: 'a', other: 'b' } });
    const b = await env.engine.startTask({ template: 'meet', workspace: 'other', inputs: { me: 'b', other: 'a' } });
    assert.equal((await settle(env.engine, a.id)).status, 'completed');
    assert.equal((await settle(env.engine, b.id)).status, 'completed');
  });
});

test('scheduling: within a workspace, higher priority runs first, then first come first served', async () => {
  await withEnv({ config: { max_concurrent_tasks: 4 } }, async (env) => {
    const order = path.join(env.root, 'order');
    writeTemplate(env, { name: 'block', steps: [{ name: 'b', type: 'shell', timeout: '20s', run: `until [ -f release ]; do sleep 0.02; done; echo blocker >> ${shq(order)}` }] });
    writeTemplate(env, {
      name: 'mark',
      inputs: { label: { required: true } },
      steps: [{ name: 'm', type: 'shell', run: `echo "$ATLAS_INPUT_LABEL" >> ${shq(order)}` }],
    });
    const blocker = await env.engine.startTask({ template: 'block', workspace: env.wsName });
    const queued: Array<[string, number]> = [
      ['low', -1],
      ['normal-1', 0],
      ['high-1', 5],
      ['normal-2', 0],
      ['high-2', 5],
      ['urgent', 9],
    ];
    const ids: string[] = [];
    for (const [label, priority] of queued) ids.push((await env.engine.startTask({ template: 'mark', workspace: env.wsName, inputs: { label }, priority })).id);
    // Nothing else ran while the workspace was busy.
    assert.equal(fs.existsSync(order), false);
    for (const id of ids) assert.equal((await env.engine.getTask(id)).status, 'pending');
    fs.writeFileSync(path.join(env.ws, 'release'), '');
    for (const id of [blocker.id, ...ids]) assert.equal((await settle(env.engine, id)).status, 'completed');
    assert.deepEqual(fs.readFileSync(order, 'utf8').trim().split('\n'), ['blocker', 'urgent', 'high-1', 'high-2', 'normal-1', 'normal-2', 'low']);
  });
});
