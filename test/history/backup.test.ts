// Backups (DESIGN §14): a backup made while four tasks run steps restores into a new home
// where every task's state is one of its checkpoints at backup time, and the daemon there
// finishes the unfinished ones. A backup with one flipped byte, or cut short, is refused by
// --verify and by restore, which then changes nothing; a non-empty home is refused without --force.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, runCli, waitFor } from '../helpers/daemon.js';

const STEPS = 10;
/** Step 3 waits for a gate file the test makes once the backup is written, so every task is
 *  part-way through (two steps finished, one running) when the backup is taken, however slow the machine. */
function template(gate: string): string {
  const run = (i: number) => (i === 3 ? `while [ ! -f '${gate}' ]; do sleep 0.05; done; echo step-3` : `sleep 0.1; echo step-${i}`);
  return `name: steps\ndescription: ten short steps, the third waits for a gate\nsteps:\n${Array.from({ length: STEPS }, (_, i) => `  - name: s${i + 1}\n    type: shell\n    run: "${run(i + 1)}"\n`).join('')}`;
}

function taskFiles(home: string): Map<string, TaskRecord> {
  const out = new Map<string, TaskRecord>();
  const wsRoot = path.join(home, 'workspaces');
  for (const ws of fs.readdirSync(wsRoot)) {
    const tasks = path.join(wsRoot, ws, 'tasks');
    if (!fs.existsSync(tasks)) continue;
    for (const id of fs.readdirSync(tasks)) out.set(id, JSON.parse(fs.readFileSync(path.join(tasks, id, 'task.json'), 'utf8')) as TaskRecord);
  }
  return out;
}

describe('backup and restore', () => {
  let h1: TestHome;
  let h2: TestHome;
  let file: string;
  const ids: string[] = [];
  const finals = new Map<string, TaskRecord>();

  before(async () => {
    h1 = new TestHome();
    h2 = new TestHome();
    const gate = path.join(h1.root, 'gate');
    h1.writeTemplate('steps', template(gate));
    await h1.startDaemon();
    await h1.createWorkspaces(['a', 'b', 'c', 'd']);
    const c = await h1.client();
    for (const ws of ['a', 'b', 'c', 'd']) ids.push(((await c.call('task.start', { template: 'steps', workspace: ws })) as TaskRecord).id);
    // Back up once every task is part-way through.
    for (const id of ids) await h1.waitTask(id, 'step 3 running', (t) => t.step_results.length === 2 && t.steps[2]?.status === 'running', 60_000);
    file = path.join(h1.root, 'snap.tar.gz');
    expectExit(await h1.cli(['backup', file]), 0);
    fs.writeFileSync(gate, '');
    for (const id of ids) finals.set(id, await h1.waitSettled(id, 60_000));
  });
  after(async () => {
    await h1?.dispose();
    await h2?.dispose();
  });

  test('--verify accepts the backup; a flipped byte or a cut is refused by verify and restore', async () => {
    const ok = expectExit(await h1.cli(['backup', '--verify', file]), 0);
    assert.match(ok.stderr, /intact/);
    const bytes = fs.readFileSync(file);
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    const bad = path.join(h1.root, 'flipped.tar.gz');
    fs.writeFileSync(bad, flipped);
    const cut = path.join(h1.root, 'cut.tar.gz');
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    for (const [f, why] of [[bad, /damaged: .*(corrupt|checksum|tar)/], [cut, /damaged: .*truncated/]] as const) {
      const v = expectExit(await h1.cli(['backup', '--verify', f]), 7);
      assert.match(v.stderr, why);
      const target = path.join(h1.root, `restored-${path.basename(f)}`);
      const r = expectExit(await runCli(target, ['restore', f]), 7);
      assert.match(r.stderr, why);
      assert.equal(fs.existsSync(target), false, 'a refused restore made the home');
    }
  });

  test('restored tasks are checkpoints from backup time; the daemon finishes the unfinished ones', async () => {
    expectExit(await h2.cli(['restore', file]), 0);
    const restored = taskFiles(h2.home);
    assert.deepEqual([...restored.keys()].sort(), [...ids].sort());
    let unfinished = 0;
    for (const [id, t] of restored) {
      const final = finals.get(id)!;
      assert.ok(t.revision <= final.revision, `${id}: restored revision ${t.revision} is past the last one, ${final.revision}`);
      assert.ok(t.step_results.length >= 2, `${id}: the backup predates steps that had finished`);
      // The finished steps are exactly those of a checkpoint: a prefix of the final results.
      assert.deepEqual(t.step_results, final.step_results.slice(0, t.step_results.length), `${id}: results differ from every checkpoint`);
      assert.deepEqual(t.transitions, final.transitions.slice(0, t.transitions.length));
      for (const s of t.steps) if (s.status === 'running') assert.equal(s.process, null, 'a running step kept its process record');
      if (t.status !== 'completed') unfinished++;
      const st = fs.statSync(path.join(h2.home, 'workspaces', t.workspace, 'tasks', id, 'task.json'));
      assert.equal(st.mode & 0o777, 0o600);
    }
    assert.equal(unfinished, ids.length, 'a task had finished before the backup: the gate did not hold it');
    // A non-empty home is refused without --force.
    const again = expectExit(await h2.cli(['restore', file]), 5);
    assert.match(again.stderr, /not empty.*--force/);

    await h2.startDaemon();
    for (const id of ids) {
      const t = await h2.waitSettled(id, 60_000);
      assert.equal(t.status, 'completed', `${id} ended ${t.status}`);
      assert.equal(t.steps.filter((s) => s.status === 'completed').length, STEPS);
      // No step that had finished at backup time ran again.
      const before = restored.get(id)!;
      assert.deepEqual(t.step_results.slice(0, before.step_results.length), before.step_results);
    }
    // --force does not restore over a home whose daemon runs.
    const forced = expectExit(await h2.cli(['restore', file, '--force']), 5);
    assert.match(forced.stderr, /daemon .* runs/);
  });

  test('--force moves a stopped home aside and restores', async () => {
    await h2.stopDaemon();
    const r = expectExit(await h2.cli(['restore', file, '--force', '--json']), 0);
    const out = JSON.parse(r.stdout) as { moved_aside: string; tasks: number };
    assert.equal(out.tasks, ids.length);
    assert.ok(fs.existsSync(path.join(out.moved_aside, 'workspaces')), 'the previous home was not kept');
    await waitFor('the restored tasks', () => taskFiles(h2.home).size === ids.length);
    fs.rmSync(out.moved_aside, { recursive: true, force: true });
  });
});
