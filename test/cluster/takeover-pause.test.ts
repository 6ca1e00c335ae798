// Takeover of a step with `on_interrupt: pause` (DESIGN §6, §9): two daemons on one
// database; the owner is killed with SIGKILL while the step blocks on a gate file; the other
// daemon takes the task over and, instead of running the step again, records the cut-off
// attempt and leaves the task `interrupted` (the old step's process tree killed). Only
// `atlas resume` runs the step again; the task then completes, and the steps that had
// finished never ran twice (each step appends a line to a file; the lines are counted).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { isGone, waitFor } from '../helpers/daemon.js';
import { fileDatabase } from '../helpers/pg.js';
import { APPEND_TEMPLATE, ClusterHomes } from './helpers.js';

const db = await fileDatabase('takeoverpause');

const TEMPLATE = `name: gated
inputs:
  log: { required: true }
  gate: { required: true }
steps:
  - name: s1
    type: shell
    run: echo "$ATLAS_TASK_ID s1 done" >> "$ATLAS_INPUT_LOG"
  - name: s2
    type: shell
    on_interrupt: pause
    run: echo "$ATLAS_TASK_ID s2 start" >> "$ATLAS_INPUT_LOG"; while [ ! -e "$ATLAS_INPUT_GATE" ]; do sleep 0.05; done; echo "$ATLAS_TASK_ID s2 done" >> "$ATLAS_INPUT_LOG"
  - name: s3
    type: shell
    run: echo "$ATLAS_TASK_ID s3 done" >> "$ATLAS_INPUT_LOG"
`;

function daemonIdOf(home: string): string | undefined {
  try {
    return fs.readFileSync(path.join(home, 'daemon.id'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

test('kill -9 of the owner mid-step with on_interrupt: pause: the survivor pauses the task; resume finishes it; no finished step re-runs', { skip: db.skip, timeout: 120_000 }, async () => {
  const c = new ClusterHomes({ url: db.url, schema: 'pause', workspaces: ['p'], ttl: '15s' }, 2, APPEND_TEMPLATE(1, '0'));
  for (const h of c.homes) h.writeTemplate('gated', TEMPLATE);
  let killed: number | undefined;
  try {
    await Promise.all(c.homes.map((h) => h.startDaemon()));
    const [h0] = c.homes as [(typeof c.homes)[0]];
    await h0.ok(['workspace', 'create', 'p', '--path', h0.dir('p')]);
    const log = path.join(h0.root, 'appends.log');
    const gate = path.join(h0.root, 'gate');
    const lines = (what: string) => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.endsWith(what)).length : 0);
    const id = (await h0.json<TaskRecord>(['start', 'gated', '-w', 'p', '-i', `log=${log}`, '-i', `gate=${gate}`])).id;

    // s2 runs (its process recorded in the checkpoint) and blocks on the gate.
    const owner = await waitFor(
      's2 to be running on some daemon',
      async () => {
        const r = (await c.query<{ owner: string | null; data: string }>('SELECT owner, data FROM tasks WHERE id = $1', [id]))[0];
        if (!r?.owner || lines(`${id} s2 start`) === 0) return undefined;
        const t = JSON.parse(r.data) as TaskRecord;
        const step = t.steps[t.current_step];
        return step?.name === 's2' && step.status === 'running' && step.process ? r.owner : undefined;
      },
      30_000,
    );
    const victim = c.homes.find((h) => daemonIdOf(h.home) === owner)!;
    const survivor = c.homes.find((h) => h !== victim)!;
    assert.ok(victim && survivor, `the owner ${owner} is one of the two daemons`);
    killed = Number(fs.readFileSync(path.join(victim.home, 'daemon.pid'), 'utf8').trim());
    process.kill(killed, 'SIGKILL');

    // The survivor takes it over and pauses it: interrupted, with the cut-off attempt recorded.
    const paused = await waitFor(
      'the survivor to take the task over and pause it',
      async () => {
        const r = (await c.query<{ status: string; owner: string | null; data: string }>('SELECT status, owner, data FROM tasks WHERE id = $1', [id]))[0];
        return r?.status === 'interrupted' ? (JSON.parse(r.data) as TaskRecord) : undefined;
      },
      30_000,
    );
    await waitFor('the killed daemon to be gone', () => isGone(killed!), 10_000);
    killed = undefined;
    assert.equal(paused.steps[paused.current_step]?.name, 's2', 'paused at the cut-off step');
    assert.ok(paused.step_results.some((r) => r.step_name === 's2' && r.status === 'interrupted'), 'the cut-off attempt is recorded as interrupted');
    assert.match(paused.transitions.at(-1)?.reason ?? '', /on_interrupt: pause/);
    const shown = await survivor.json<TaskRecord>(['show', id]);
    assert.equal(shown.status, 'interrupted');
    // Not re-run: one start of s2, and the old s2 process was killed (opening the gate now
    // would otherwise make it write "s2 done").
    fs.writeFileSync(gate, '');
    assert.equal(lines(`${id} s2 start`), 1, 's2 ran again before resume');
    assert.equal(lines(`${id} s1 done`), 1);

    await survivor.ok(['resume', id]);
    const done = await survivor.waitSettled(id, 60_000);
    assert.equal(done.status, 'completed');
    assert.equal(lines(`${id} s1 done`), 1, 's1 finished once and never re-ran');
    assert.equal(lines(`${id} s2 start`), 2, 's2: the cut-off run and the resumed one');
    assert.equal(lines(`${id} s2 done`), 1, 's2 finished once (the cut-off process never went on)');
    assert.equal(lines(`${id} s3 done`), 1);
    assert.equal(done.step_results.filter((r) => r.status === 'completed').map((r) => r.step_name).join(','), 's1,s2,s3');
  } finally {
    if (killed !== undefined && !isGone(killed)) process.kill(killed, 'SIGKILL');
    await c.dispose();
  }
});
