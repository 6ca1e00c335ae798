// `logs -f` on one daemon follows live a task another daemon runs: each line the step prints
// reaches the follower while the step still runs (the test releases the lines one at a time
// through files it controls), none is missed or shown twice, and the follower ends with the task.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { ClusterHomes } from './helpers.js';

const db = await fileDatabase('follow_remote');

// Prints "line 0", then "line i" each time the test creates go<i>, then ends when it creates "end".
const TEMPLATE = [
  'name: drip',
  'inputs:',
  '  dir: { required: true }',
  'steps:',
  '  - name: drip',
  '    type: shell',
  '    run: |',
  '      echo "line 0 from $ATLAS_HOME"',
  '      for i in 1 2 3 4; do',
  '        while [ ! -e "$ATLAS_INPUT_DIR/go$i" ]; do sleep 0.02; done',
  '        echo "line $i"',
  '      done',
  '      while [ ! -e "$ATLAS_INPUT_DIR/end" ]; do sleep 0.02; done',
  '      echo "last line"',
].join('\n') + '\n';

const count = (text: string, line: string) => text.split('\n').filter((l) => l.startsWith(line)).length;

test('logs -f on daemon b streams the output of a task daemon a runs, live, and ends with it', { skip: db.skip, timeout: 120_000 }, async () => {
  // Only a (its maker) can run workspace w: the task runs there, the follower is b's.
  const c = new ClusterHomes({ url: db.url, schema: 'atlas', workspaces: [] }, 2, '');
  try {
    const [a, b] = c.homes as [(typeof c.homes)[0], (typeof c.homes)[0]];
    for (const h of c.homes) h.writeTemplate('drip', TEMPLATE);
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    await a.ok(['workspace', 'create', 'w', '--path', a.dir('w')]);
    const gate = a.dir('gate');
    const id = (await b.json<TaskRecord>(['start', 'drip', '-w', 'w', '-i', `dir=${gate}`])).id;
    await waitFor('a to run the task and print its first line', async () => {
      const r = await b.ok(['logs', id]);
      return r.stdout.includes('line 0') ? true : undefined;
    }, 60_000, 100);

    const follower = b.spawn(['logs', id, '-f'], { timeoutMs: 90_000 });
    await waitFor('the follower to show the history', () => follower.peek().stdout.includes('line 0') || undefined, 30_000);
    assert.ok(follower.peek().stdout.includes(`line 0 from ${a.home}`), 'the task runs on daemon a');
    for (let i = 1; i <= 4; i++) {
      fs.writeFileSync(path.join(gate, `go${i}`), '');
      await waitFor(`b's follower to show line ${i} while the task runs`, () => follower.peek().stdout.includes(`line ${i}`) || undefined, 30_000);
      const [row] = await c.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [id]);
      assert.equal(row?.status, 'running', `line ${i} arrived before the task ended`);
    }
    fs.writeFileSync(path.join(gate, 'end'), '');
    const r = await follower.result;
    assert.equal(r.code, 0, `the follower ends when the task completes:\n${r.stderr}`);
    for (const line of ['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'last line']) {
      assert.equal(count(r.stdout, line), 1, `${line} shown exactly once:\n${r.stdout}`);
    }
    const order = ['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'last line'].map((l) => r.stdout.indexOf(l));
    assert.deepEqual(order, [...order].sort((x, y) => x - y), 'in the order the step printed them');
    assert.equal((await b.json<TaskRecord>(['show', id])).status, 'completed');
  } finally {
    await c.dispose();
  }
});
