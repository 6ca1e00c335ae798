// The diamond of DESIGN §13 through a real daemon and the CLI: A; B and C after A; D after B
// and C. D runs only after both; B and C run in parallel in different workspaces (each waits
// until the other has started, so run one after the other they would fail); a daemon killed
// (SIGKILL, at a fault point) right after A's completion is on disk but before its dependents
// were released starts B and C at restart; cancelling C abandons D, naming C.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, assertGone, expectExit, waitFor } from '../helpers/daemon.js';

// Records "start <ns>" / "end <ns>" in $MARKS/<name>; waits for the peer's start (when given)
// and for a gate file in its workspace (when asked), each bounded.
const NODE = `name: node
description: one step that records when it ran, optionally waiting for a peer and a gate
inputs:
  name: { required: true }
  marks: { required: true }
  peer: { default: "" }
  gate: { default: "no" }
steps:
  - name: work
    type: shell
    timeout: 60s
    run: |
      m="$ATLAS_INPUT_MARKS"
      echo "start $(date +%s%N)" > "$m/$ATLAS_INPUT_NAME"
      n=0
      if [ -n "$ATLAS_INPUT_PEER" ]; then
        until [ -f "$m/$ATLAS_INPUT_PEER" ]; do n=$((n+1)); [ $n -gt 1000 ] && { echo "peer never started" >&2; exit 7; }; sleep 0.02; done
      fi
      if [ "$ATLAS_INPUT_GATE" = yes ]; then until [ -f gate ]; do sleep 0.02; done; fi
      echo "end $(date +%s%N)" >> "$m/$ATLAS_INPUT_NAME"
`;

function times(marks: string, name: string): { start: bigint; end: bigint } {
  const lines = fs.readFileSync(path.join(marks, name), 'utf8').trim().split('\n');
  return { start: BigInt(lines[0]!.split(' ')[1]!), end: BigInt(lines[1]!.split(' ')[1]!) };
}

describe('a diamond of dependencies', () => {
  let h: TestHome;
  let dirs: Record<string, string>;

  before(async () => {
    h = new TestHome();
    h.writeTemplate('node', NODE);
  });
  after(async () => {
    await h.dispose();
  });

  // Through the socket (each CLI run costs a Node start); the CLI's --after is used once below.
  const start = async (name: string, ws: string, marks: string, opts: { after?: string[]; peer?: string; gate?: boolean } = {}) => {
    const c = await h.client();
    try {
      return (await c.call('task.start', {
        template: 'node',
        workspace: ws,
        inputs: { name, marks, ...(opts.peer ? { peer: opts.peer } : {}), ...(opts.gate ? { gate: 'yes' } : {}) },
        ...(opts.after ? { after: opts.after } : {}),
      })) as TaskRecord;
    } finally {
      c.close();
    }
  };

  test('D runs only after B and C, which run in parallel in their own workspaces', async () => {
    await h.startDaemon();
    dirs = await h.createWorkspaces(['wa', 'wb', 'wc', 'wd']);
    const marks = h.dir('marks-1');
    const a = await start('a', 'wa', marks, { gate: true });
    const b = await start('b', 'wb', marks, { after: [a.id], peer: 'c' });
    const c = await start('c', 'wc', marks, { after: [a.id], peer: 'b' });
    const d = await h.json<TaskRecord>(['start', 'node', '-w', 'wd', '-i', 'name=d', '-i', `marks=${marks}`, '--after', `${b.id},${c.id}`]);
    assert.deepEqual(d.waiting_on, [b.id, c.id]);
    // show says what D waits on.
    const shown = expectExit(await h.cli(['show', d.id]), 0).stdout;
    assert.match(shown, new RegExp(`waiting on ${b.id} pending, ${c.id} pending`));
    fs.writeFileSync(path.join(dirs['wa']!, 'gate'), '');
    for (const t of [a, b, c, d]) {
      const done = await h.waitSettled(t.id);
      assert.equal(done.status, 'completed', `${t.id} ended ${done.status}: ${done.error}`);
    }
    const [ta, tb, tc, td] = ['a', 'b', 'c', 'd'].map((n) => times(marks, n)) as [ReturnType<typeof times>, ReturnType<typeof times>, ReturnType<typeof times>, ReturnType<typeof times>];
    assert.ok(tb.start > ta.end && tc.start > ta.end, 'B and C started after A ended');
    assert.ok(tb.start < tc.end && tc.start < tb.end, 'B and C overlapped');
    assert.ok(td.start > tb.end && td.start > tc.end, 'D started after B and C ended');
    await h.stopDaemon();
  });

  test('kill -9 right after A completes: B and C start at restart; cancel C: D is abandoned naming C', async () => {
    const marks = h.dir('marks-2');
    fs.rmSync(path.join(dirs['wa']!, 'gate'));
    // This daemon dies (SIGKILL) the moment a task with dependents has ended, before they are released.
    const pid = (await h.json<{ pid: number }>(['daemon', 'start'], { env: { ATLAS_FAULTS: 'dependency.before_release' } })).pid;
    const a = await start('a2', 'wa', marks, { gate: true });
    const b = await start('b2', 'wb', marks, { after: [a.id], peer: 'c2' });
    const c = await start('c2', 'wc', marks, { after: [a.id], peer: 'b2', gate: true });
    const d = await start('d2', 'wd', marks, { after: [b.id, c.id] });
    fs.writeFileSync(path.join(dirs['wa']!, 'gate'), '');
    await assertGone(pid, 'the daemon killed at the fault point');
    assert.equal(h.readTaskFile('wa', a.id).status, 'completed');
    for (const [ws, t] of [['wb', b], ['wc', c]] as const) {
      const onDisk = h.readTaskFile(ws, t.id);
      assert.equal(onDisk.status, 'pending');
      assert.deepEqual(onDisk.waiting_on, [a.id], 'not released before the crash');
    }
    await h.startDaemon();
    await h.waitTask(b.id, 'B to complete', (t) => t.status === 'completed');
    await h.waitTask(c.id, 'C to run', (t) => t.status === 'running');
    assert.ok(fs.existsSync(path.join(marks, 'b2')) && fs.existsSync(path.join(marks, 'c2')), 'B and C both started');
    assert.equal((await h.getTask(d.id)).status, 'pending');
    expectExit(await h.cli(['cancel', c.id]), 0);
    const dd = await h.waitTask(d.id, 'D to be abandoned', (t) => t.status === 'abandoned');
    assert.match(dd.transitions.at(-1)!.reason, new RegExp(`dependency ${c.id} ended abandoned`));
    assert.ok(!fs.existsSync(path.join(marks, 'd2')), 'D never ran');
    await waitFor('list to show D abandoned', async () => (await h.listTasks()).find((t) => t.id === d.id)?.status === 'abandoned');
    await h.stopDaemon();
  });
});
