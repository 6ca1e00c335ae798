// Pruning the events log (`retention.events_older_than`, DESIGN §14) through a real daemon, with
// small segments (ATLAS_EVENTS_SEGMENT_BYTES) and the clock moved by ATLAS_TEST_CLOCK instead of
// waiting: whole segments older than the cutoff go, oldest first, and every event from the
// cutoff on stays, byte for byte; a kill -9 right after the first segment went (a fault point)
// loses no kept event, and the next daemon finishes the job; `atlas events --since` replays
// exactly what remains and says on stderr when the seqs it was asked for were pruned; a
// subscriber from before the cutoff starts at the oldest kept seq (events.subscribe answers
// first_seq) and new events go on from the last seq; a log wholly older than the cutoff keeps
// only the segment being written, and a restart does not take the pruned events' facts for
// ones a crash cut off (it once appended them all again).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AtlasClient } from '../../src/client/client.js';
import type { AtlasEvent } from '../../src/events/event.js';
import { NOTIFY, type RpcNotification } from '../../src/protocol/protocol.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, homeProcesses, waitFor } from '../helpers/daemon.js';

const SEGMENT_RE = /^(\d{20})\.jsonl$/;

function segments(h: TestHome): Array<{ first: number; events: AtlasEvent[] }> {
  const dir = path.join(h.home, 'events');
  return fs
    .readdirSync(dir)
    .filter((n) => SEGMENT_RE.test(n))
    .sort()
    .map((n) => ({
      first: Number(SEGMENT_RE.exec(n)![1]),
      events: fs.readFileSync(path.join(dir, n), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AtlasEvent),
    }));
}

const readLog = (h: TestHome): AtlasEvent[] => segments(h).flatMap((s) => s.events);

async function runTasks(h: TestHome, c: AtlasClient, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = (await c.call('task.start', { template: 'few', workspace: i % 2 ? 'w2' : 'w1' })) as TaskRecord;
    await c.call('task.wait', { id: t.id });
    ids.push(t.id);
  }
  return ids;
}

async function printed(h: TestHome, since: number): Promise<{ events: AtlasEvent[]; stderr: string }> {
  const r = await h.ok(['events', '--since', String(since), '--json']);
  return { events: r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AtlasEvent), stderr: r.stderr };
}

test('events-log pruning: old segments go, newer events stay, a kill -9 midway loses nothing, --since and subscribers see what remains', { timeout: 180_000 }, async () => {
  const h = new TestHome();
  const clock = path.join(h.root, 'clock');
  const env = { ATLAS_EVENTS_SEGMENT_BYTES: '1500' };
  try {
    h.writeTemplate('few', 'name: few\nsteps:\n' + [1, 2, 3, 4].map((i) => `  - name: s${i}\n    type: wait\n    duration: 0s\n`).join(''));
    await h.startDaemon({ env });
    await h.createWorkspaces(['w1', 'w2']);
    let c = await h.client();
    await runTasks(h, c, 4);
    await h.stopDaemon();
    const lastOld = readLog(h).at(-1)!;
    // The cutoff falls between the old history and the new one.
    await waitFor('the clock to pass the old events', () => Date.now() > Date.parse(lastOld.at) + 5);
    const cutoff = new Date(Date.parse(lastOld.at) + 1).toISOString();
    await h.startDaemon({ env });
    c = await h.client();
    await runTasks(h, c, 2);
    await h.stopDaemon();

    const all = readLog(h);
    all.forEach((e, i) => assert.equal(e.seq, i + 1));
    const before = segments(h);
    const firstNew = all.find((e) => e.at >= cutoff)!.seq;
    assert.equal(firstNew, lastOld.seq + 1);
    // A segment goes when the next one starts at or below the first new event: it is all older.
    const doomed = before.filter((s, i) => before[i + 1] !== undefined && before[i + 1]!.first <= firstNew).map((s) => s.first);
    assert.ok(doomed.length >= 3, `too few old segments to prune (${doomed.length} of ${before.length})`);
    const firstKept = before[doomed.length]!.first;

    fs.writeFileSync(path.join(h.home, 'config.yaml'), 'retention:\n  events_older_than: 1h\n');
    fs.writeFileSync(clock, new Date(Date.parse(cutoff) + 3600_000).toISOString());
    const retention = { ...env, ATLAS_TEST_CLOCK: clock, ATLAS_RETENTION_DELAY_MS: '300' };

    // 1. kill -9 right after the first segment is removed (the daemon may die before it answers).
    await h.cli(['daemon', 'start', '--json'], { env: { ...retention, ATLAS_FAULTS: 'events.segment_pruned' } });
    await waitFor('the daemon to kill itself in the prune', () => homeProcesses(h.home).length === 0 && segments(h)[0]!.first !== before[0]!.first, 30_000);
    assert.deepEqual(segments(h).map((s) => s.first), before.slice(1).map((s) => s.first), 'exactly the oldest segment went');
    assert.deepEqual(readLog(h), all.filter((e) => e.seq >= before[1]!.first), 'the rest of the log is untouched');

    // 2. The next daemon prunes the rest.
    await h.startDaemon({ env: retention });
    await waitFor('the prune to finish', () => segments(h)[0]!.first === firstKept, 30_000);
    c = await h.client();
    const kept = readLog(h);
    assert.deepEqual(kept, all.filter((e) => e.seq >= firstKept), 'kept events byte for byte');
    assert.ok(kept.length < all.length);
    for (const e of all.filter((x) => x.at >= cutoff)) assert.ok(kept.some((k) => k.seq === e.seq), `event ${e.seq} (newer than the cutoff) was pruned`);

    // 3. `atlas events --since` replays exactly what remains, and says when it starts later.
    for (const since of [0, firstKept - 2, firstKept - 1, firstKept + 3]) {
      const r = await printed(h, since);
      assert.deepEqual(r.events, kept.filter((e) => e.seq > since), `events --since ${since}`);
      if (since < firstKept - 1) assert.match(r.stderr, new RegExp(`events ${since + 1} to ${firstKept - 1} were pruned .*starting at seq ${firstKept}`));
      else assert.doesNotMatch(r.stderr, /pruned/);
    }

    // 4. A subscriber from before the cutoff starts at the oldest kept seq; new events go on from the last.
    const got: AtlasEvent[] = [];
    const sub = await AtlasClient.connect(h.home, { onNotify: (n: RpcNotification) => n.method === NOTIFY.EVENT && got.push((n.params as { event: AtlasEvent }).event) });
    try {
      const r = (await sub.call('events.subscribe', { since: 0 })) as { first_seq: number };
      assert.equal(r.first_seq, firstKept);
      const [fresh] = await runTasks(h, c, 1);
      await waitFor('the new task.finished to stream', () => got.some((e) => e.type === 'task.finished' && e.task_id === fresh));
      assert.equal(got[0]!.seq, firstKept);
      got.forEach((e, i) => assert.equal(e.seq, firstKept + i, 'seqs without a gap'));
      assert.deepEqual(got.slice(0, kept.length), kept);
      assert.equal(got[kept.length]!.seq, all.at(-1)!.seq + 1, 'new events go on from the last seq');
    } finally {
      sub.close();
    }
    await h.stopDaemon();

    // 5. A log wholly older than the cutoff keeps only the segment being written.
    const last = segments(h).at(-1)!;
    fs.writeFileSync(clock, new Date(Date.now() + 10 * 3600_000).toISOString());
    await h.startDaemon({ env: retention });
    await waitFor('every full segment to be pruned', () => segments(h).length === 1, 30_000);
    assert.equal(segments(h)[0]!.first, last.first);
    // Nothing was derived again at these restarts for the facts whose events were pruned
    // (repair reads the prune's high-water mark, events/pruned.json).
    const r = await printed(h, 0);
    assert.deepEqual(r.events, last.events);
    if (last.first > 1) assert.match(r.stderr, /were pruned/);
  } finally {
    await h.dispose();
  }
});
