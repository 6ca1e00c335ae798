// Prune under kill -9 (DESIGN §14): 1,000 finished tasks, pruned in 20 rounds, each round's
// daemon killed with SIGKILL at a random moment of its prune (some exactly after an archive
// became durable, or exactly after the commit rename, by fault points). After every restart
// each task is exactly one of live or archived; at the end every archive opens, and `show`,
// `logs` and `artifacts` of archived tasks answer what they answered before (artifacts byte
// for byte); `unarchive` brings one back as it was.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AtlasClient } from '../../src/client/client.js';
import { readTgz } from '../../src/store/tgz.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, isGone, waitFor } from '../helpers/daemon.js';

const TASKS = Number(process.env['ATLAS_PRUNE_TASKS'] ?? 1000);
const ROUNDS = 20;
const T0 = Date.parse('2025-01-01T00:00:00Z');
const MINUTE = 60_000;
/** After the killed rounds, one prune runs to its end: every task older than minute FINAL is then archived. */
const FINAL = Math.min(TASKS, 400);

const TEMPLATE = `name: arty
description: output, and a validation artifact
steps:
  - name: say
    type: shell
    run: echo "hello from $ATLAS_TASK_ID"; printf 'binary\\0\\1\\2' > /dev/null
  - name: check
    type: validation
    commands: ["true", "echo checked"]
`;

function idOf(n: number): string {
  const d = new Date(T0 + n * MINUTE).toISOString();
  return `task-${d.slice(0, 10).replace(/-/g, '')}-${d.slice(11, 19).replace(/:/g, '')}`;
}

interface Seen {
  task: unknown;
  logs: unknown;
  artifacts: Array<{ name: string; size: number }>;
  contents: Record<string, unknown>;
}

async function look(c: AtlasClient, id: string): Promise<Seen> {
  const { archived_at: _, ...task } = (await c.call('task.get', { id })) as TaskRecord & { archived_at?: string };
  const logs = (await c.call('task.logs', { id })).records;
  const artifacts = (await c.call('task.artifacts', { id })).map((a) => ({ name: a.name, size: a.size }));
  const contents: Record<string, unknown> = {};
  for (const a of artifacts) contents[a.name] = await c.call('task.artifact', { id, name: a.name });
  return { task, logs, artifacts, contents };
}

describe('prune killed at random points', () => {
  let h: TestHome;
  const ids: string[] = [];
  const sample: string[] = [];
  const before_ = new Map<string, Seen>();
  let cliShow: { id: string; text: string } | undefined;

  const live = (id: string) => fs.existsSync(path.join(h.home, 'workspaces', 'w', 'tasks', id));
  const archiveFile = (n: number) => path.join(h.home, 'archive', 'w', new Date(T0 + n * MINUTE).toISOString().slice(0, 7), `${idOf(n)}.tar.gz`);

  before(async () => {
    h = new TestHome();
    h.writeTemplate('arty', TEMPLATE);
    await h.startDaemon();
    await h.createWorkspaces(['w']);
    const c = await h.client();
    const seed = ((await c.call('task.start', { template: 'arty', workspace: 'w' })) as TaskRecord).id;
    assert.equal((await h.waitSettled(seed)).status, 'completed');
    await h.stopDaemon();
    // 1,000 finished tasks, cloned from the seed on disk, a minute apart in age.
    const tasksDir = path.join(h.home, 'workspaces', 'w', 'tasks');
    const seedDir = path.join(tasksDir, seed);
    const seedTask = JSON.parse(fs.readFileSync(path.join(seedDir, 'task.json'), 'utf8')) as TaskRecord;
    for (let n = 0; n < TASKS; n++) {
      const id = idOf(n);
      ids.push(id);
      const dir = path.join(tasksDir, id);
      fs.cpSync(seedDir, dir, { recursive: true });
      fs.rmSync(path.join(dir, 'task.json.bak'), { force: true });
      const at = new Date(T0 + n * MINUTE).toISOString();
      const done = new Date(T0 + n * MINUTE + 1000).toISOString();
      fs.writeFileSync(path.join(dir, 'task.json'), JSON.stringify({ ...seedTask, id, description: `clone ${n}`, created_at: at, updated_at: done, completed_at: done }) + '\n', { mode: 0o600 });
    }
    fs.rmSync(seedDir, { recursive: true });
    await h.startDaemon();
    const c2 = await h.client();
    for (let n = 0; n < FINAL; n += Math.ceil(FINAL / 25)) sample.push(idOf(n));
    for (const id of sample) before_.set(id, await look(c2, id));
    cliShow = { id: sample[1]!, text: (await h.ok(['show', sample[1]!, '--json'])).stdout };
  });
  after(async () => {
    await h?.dispose();
  });

  test('each task is exactly one of live or archived after every kill; archives read as the tasks did', async () => {
    let interrupted = 0;
    let pid = await h.startDaemon(); // the one before() started
    for (let round = 0; round < ROUNDS; round++) {
      const fault = round % 10 === 0 ? 'archive.written' : round % 10 === 1 ? 'archive.committed' : undefined;
      h['closeClients']();
      if (fault) {
        process.kill(pid, 'SIGKILL');
        await waitFor('the killed daemon to be gone', () => isGone(pid), 15_000);
        pid = await h.startDaemon({ env: { ATLAS_FAULTS: fault } });
      }
      const c = await h.client();
      // Round r takes the tasks older than minute 50 (r + 1), so every round has work.
      const upTo = Math.min(TASKS, Math.round((TASKS / ROUNDS) * (round + 1)));
      const olderThan = Date.now() - (T0 + upTo * MINUTE) + 1;
      const call = c.call('task.prune', { older_than: `${olderThan}ms` }).then(
        () => false,
        () => true,
      );
      // A fault round dies at its first archive; the others at a random moment.
      if (!fault) await Promise.race([call, sleep(Math.floor(Math.random() * 1500))]);
      else await call;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      if (await call) interrupted++;
      await waitFor('the killed daemon to be gone', () => isGone(pid), 15_000);
      // The next daemon reconciles before it answers anything about archives.
      h['closeClients']();
      pid = await h.startDaemon();
      await (await h.client()).call('task.list', { archived: true });
      const tasksDir = path.join(h.home, 'workspaces', 'w', 'tasks');
      const leftovers = fs.readdirSync(tasksDir).filter((n) => n.startsWith('.'));
      assert.deepEqual(leftovers, [], `round ${round}: leftovers after recovery`);
      for (let n = 0; n < TASKS; n++) {
        const isLive = live(idOf(n));
        const isArchived = fs.existsSync(archiveFile(n));
        assert.ok(isLive !== isArchived, `round ${round}: ${idOf(n)} is ${isLive ? 'live and archived' : 'neither live nor archived'}`);
      }
    }
    assert.ok(interrupted >= 10, `only ${interrupted} of ${ROUNDS} prunes were cut off by the kill: the test tested little`);

    const c = await h.client();
    const last = await c.call('task.prune', { older_than: `${Date.now() - (T0 + FINAL * MINUTE) + 1}ms` });
    assert.deepEqual(last.skipped, []);
    const archived = ids.filter((id) => !live(id));
    for (let n = 0; n < FINAL; n++) assert.ok(!live(idOf(n)), `${idOf(n)} was not archived by a prune that ran to its end`);
    for (let n = 0; n < TASKS; n++) {
      if (!fs.existsSync(archiveFile(n))) continue;
      await readTgz(fs.createReadStream(archiveFile(n)), archiveFile(n), 'atlas-task-archive');
    }
    const listed = (await c.call('task.query', { archived: true })).total;
    assert.equal(listed, archived.length, 'list --archived does not know every archive');
    let compared = 0;
    for (const id of sample) {
      if (live(id)) continue;
      assert.deepEqual(await look(c, id), before_.get(id), `${id}: an archived task reads differently`);
      compared++;
    }
    assert.equal(compared, sample.length);
    if (!live(cliShow!.id)) assert.equal((await h.ok(['show', cliShow!.id, '--json'])).stdout, cliShow!.text, 'show --json of an archived task changed');
    // unarchive brings one back, and it reads the same.
    const back = sample.find((id) => !live(id))!;
    await h.ok(['unarchive', back]);
    assert.ok(live(back));
    assert.deepEqual(await look(c, back), before_.get(back));
    assert.equal((await c.call('task.query', { archived: true })).total, archived.length - 1);
  });
});
