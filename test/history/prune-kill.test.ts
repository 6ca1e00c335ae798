// Prune under kill -9 (DESIGN §14): 1,000 finished tasks, pruned in 20 rounds, each round's
// daemon killed with SIGKILL at a random moment of its prune (some exactly after an archive
// became durable, or exactly after the commit rename, by fault points). After every restart
// each task is exactly one of live or archived; at the end every archive opens, and `show`,
// `logs` and `artifacts` of archived tasks answer what they answered before (artifacts byte
// for byte); `unarchive` brings one back as it was.
//
// Cheap where it can be without testing less: the seed task runs in an in-process engine (no
// daemon to start and stop), the 1,000 tasks are its clones written straight into the home,
// daemons are started by the client's own start (no CLI process per start), and a fault
// round's fault is armed by the restart that ends the round before it (no extra restart).
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AtlasClient, startDaemon } from '../../src/client/client.js';
import { Engine } from '../../src/engine/engine.js';
import { readTgz } from '../../src/store/tgz.js';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, isGone, waitFor } from '../helpers/daemon.js';
import { TEST_CONFIG } from '../engine/helpers.js';

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

/** The fault armed in round r: some rounds die exactly after an archive is durable or after the commit. */
function faultOf(round: number): string | undefined {
  return round % 10 === 0 ? 'archive.written' : round % 10 === 1 ? 'archive.committed' : undefined;
}

/** A daemon for `home`, with `fault` armed; its pid. */
async function start(home: string, fault?: string): Promise<number> {
  if (fault) process.env['ATLAS_FAULTS'] = fault;
  try {
    return (await startDaemon(home, { timeoutMs: 60_000 })).pid;
  } finally {
    delete process.env['ATLAS_FAULTS'];
  }
}

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
    // The seed runs in an engine in this process: a real finished task, no daemon needed.
    const engine = await Engine.open({ home: h.home, config: TEST_CONFIG });
    await engine.store.workspaces.create({ name: 'w', path: h.dir('w'), kind: 'path', repo: null, branch: null });
    await engine.start();
    const seed = (await engine.startTask({ template: 'arty', workspace: 'w', inputs: {} })).id;
    assert.equal((await engine.waitForSettled(seed, AbortSignal.timeout(60_000))).status, 'completed');
    await engine.shutdown(2000);
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
    await start(h.home, faultOf(0));
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
    let pid = await start(h.home); // the one before() started, with round 0's fault armed
    for (let round = 0; round < ROUNDS; round++) {
      const fault = faultOf(round);
      h['closeClients']();
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
      pid = await start(h.home, round + 1 < ROUNDS ? faultOf(round + 1) : undefined);
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
