// Two daemons racing to claim the same 200 tasks: every task is claimed exactly once, and a
// claim grows the lease epoch.
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { claimTasks } from '../../../src/store/pg/cluster-sql.js';
import { PgStore } from '../../../src/store/pg/pg-store.js';
import { fileDatabase, pgStore } from '../../helpers/pg.js';
import { makeTask } from '../helpers.js';

const db = await fileDatabase('claim');
const skip = db.skip;

test('two daemons racing for 200 tasks claim each exactly once, in priority then creation order', { skip, timeout: 120_000 }, async () => {
  const mk = (id: string) => pgStore(db.url, 'atlas', id, { ttlMs: 60_000 });
  const a = mk('daemon-a');
  const b = mk('daemon-b');
  await a.init();
  await b.init();
  try {
    const workspaces: string[] = [];
    const base = Date.parse('2026-11-21T10:00:00Z');
    for (let i = 0; i < 200; i++) {
      const ws = `w${i}`;
      workspaces.push(ws);
      await a.workspaces.create({ name: ws, path: os.tmpdir(), kind: 'path', repo: null, branch: null });
      const at = new Date(base + i * 1000);
      await a.tasks.createTask(makeTask(await a.tasks.newTaskId(at), ws, { created_at: at.toISOString(), priority: i >= 190 ? 5 : 0 }));
    }
    const claimedBy = new Map<string, string[]>();
    const run = async (s: PgStore, name: string) => {
      const mine: string[] = [];
      for (;;) {
        const got = await claimTasks(s.db, { limit: 7, workspaces, dead: [], globalLimit: null });
        if (got.length === 0) break;
        for (const c of got) {
          assert.equal(c.epoch, 1, 'a first claim has epoch 1');
          mine.push(c.id);
        }
      }
      claimedBy.set(name, mine);
    };
    await Promise.all([run(a, 'a'), run(b, 'b')]);
    const all = [...claimedBy.values()].flat();
    assert.equal(all.length, 200, 'every task claimed');
    assert.equal(new Set(all).size, 200, 'no task claimed twice');
    assert.ok((claimedBy.get('a')?.length ?? 0) > 0 && (claimedBy.get('b')?.length ?? 0) > 0, 'both daemons got work');
    const owners = await a.pool.query<{ owner: string; n: string }>('SELECT owner, count(*) AS n FROM atlas.tasks GROUP BY owner');
    assert.equal(owners.rows.reduce((n, r) => n + Number(r.n), 0), 200);
    assert.ok(owners.rows.every((r) => r.owner === 'daemon-a' || r.owner === 'daemon-b'));

    // Priority first: the ten priority-5 tasks were the first claimed by whoever claimed first.
    const first = await a.pool.query<{ id: string }>(`SELECT id FROM atlas.tasks WHERE priority = 5`);
    const firstBatch = new Set([...claimedBy.values()].flatMap((ids) => ids.slice(0, 7)));
    assert.ok(first.rows.filter((r) => firstBatch.has(r.id)).length >= 7, 'the first claims took the high-priority tasks');

    // A task whose lease expired is claimed again at a higher epoch; a live lease is not.
    await a.pool.query(`UPDATE atlas.tasks SET lease_until = now() - interval '1 second' WHERE workspace = 'w0'`);
    const again = await claimTasks(b.db, { limit: 200, workspaces, dead: [], globalLimit: null });
    assert.deepEqual(again.map((c) => [c.workspace, c.epoch]), [['w0', 2]]);
  } finally {
    await a.close();
    await b.close();
  }
});
