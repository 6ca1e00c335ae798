// Running tasks from the CLI (DESIGN §7): start (--json is task.json exactly), --wait and
// --follow with their exit codes, list with its filters, show, logs (and logs -f ending when
// the task settles), artifacts (list and print one).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LogRecord } from '../../src/store/task-log.js';
import type { TaskRecord, TaskSummary } from '../../src/store/records.js';
import { TestHome, expectExit, parseStdout } from '../helpers/daemon.js';

const SUMMARY_KEYS = ['id', 'workspace', 'template', 'status', 'current_step', 'created_at', 'updated_at'];

describe('atlas start, list, show, logs, artifacts', () => {
  let h: TestHome;
  const ids: Record<string, string> = {};

  before(async () => {
    h = new TestHome({ templates: ['quick', 'three', 'failing', 'sleeper', 'slow4', 'stream'] });
    await h.startDaemon();
    await h.createWorkspaces(['ws', 'busy', 'other', 'burst']);
  });
  after(async () => {
    await h.dispose();
  });

  test('start prints the id on stdout and a hint on stderr', async () => {
    const r = expectExit(await h.cli(['start', 'quick', '-w', 'ws']), 0);
    const id = r.stdout.trim();
    assert.match(r.stdout, /^task-\d{8}-\d{6}(-\d+)?\n$/);
    assert.match(r.stderr, new RegExp(`atlas logs ${id} -f`));
    ids['quick'] = id;
    assert.equal((await h.waitSettled(id)).status, 'completed');
  });

  test('start --json prints the task exactly as task.json holds it', async () => {
    // A task in a workspace whose other task is running stays pending, so task.json cannot
    // move on before the test reads it.
    const blocker = await h.json<TaskRecord>(['start', 'sleeper', '-w', 'busy']);
    await h.waitStepProcess(blocker.id);
    const task = await h.json<TaskRecord>(['start', 'quick', '-w', 'busy', '-d', 'compare me', '--priority', '3']);
    assert.equal(task.status, 'pending');
    assert.equal(task.description, 'compare me');
    assert.equal(task.priority, 3);
    assert.equal(task.schema_version, '1.0');
    assert.deepEqual(task, h.readTaskFile('busy', task.id));
    assert.deepEqual(await h.json<TaskRecord>(['show', task.id]), h.readTaskFile('busy', task.id));

    await h.json<TaskRecord>(['cancel', blocker.id]);
    const done = await h.waitSettled(task.id);
    assert.equal(done.status, 'completed');
    // show --json of the finished task is task.json too.
    assert.deepEqual(await h.json<TaskRecord>(['show', task.id]), h.readTaskFile('busy', task.id));
    ids['busy'] = task.id;
  });

  test('start --wait: exit 0 when the task completes, 1 when it fails', async () => {
    const [ok, okJsonRun, bad, badJsonRun, both] = await Promise.all([
      h.cli(['start', 'quick', '-w', 'ws', '--wait']),
      h.cli(['start', 'quick', '-w', 'ws', '--wait', '--json']),
      h.cli(['start', 'failing', '-w', 'ws', '--wait']),
      h.cli(['start', 'failing', '-w', 'ws', '--wait', '--json']),
      h.cli(['start', 'quick', '-w', 'ws', '--wait', '--follow']),
    ]);
    assert.match(expectExit(ok, 0).stdout, /^task-\S+ completed\n$/);
    const okJson = parseStdout<TaskRecord>(expectExit(okJsonRun, 0));
    assert.equal(okJson.status, 'completed');
    assert.deepEqual(okJson, h.readTaskFile('ws', okJson.id));

    assert.match(expectExit(bad, 1).stdout, /^task-\S+ failed/);
    const badJson = parseStdout<TaskRecord>(expectExit(badJsonRun, 1));
    assert.equal(badJson.status, 'failed');
    assert.equal(badJson.step_results[0]?.exit_code, 3);
    ids['failing'] = badJson.id;
    expectExit(both, 2);
  });

  test('start --follow: step i/N progress, the output, the exit code', async () => {
    const [followed, failedRun, jsonRun] = await Promise.all([
      h.cli(['start', 'three', '-w', 'other', '--follow']),
      h.cli(['start', 'failing', '-w', 'other', '--follow']),
      h.cli(['start', 'three', '-w', 'other', '--follow', '--json']),
    ]);
    const r = expectExit(followed, 0);
    assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('out-')), ['out-1', 'out-2', 'out-3'], r.stdout);
    for (const i of [1, 2, 3]) assert.match(r.stderr, new RegExp(`step ${i}/3 `));
    assert.match(r.stderr, /completed/);
    const id = /^(task-\S+):/m.exec(r.stderr)?.[1];
    assert.ok(id, r.stderr);
    ids['three'] = id;
    assert.equal(h.readTaskFile('other', id).status, 'completed');

    const bad = expectExit(failedRun, 1);
    assert.match(bad.stdout, /about to fail/);
    assert.match(bad.stderr, /step 1\/1 boom/);
    assert.match(bad.stderr, /failed/);

    const j = expectExit(jsonRun, 0);
    const final = parseStdout<TaskRecord>(j);
    assert.equal(final.status, 'completed');
    assert.deepEqual(final, h.readTaskFile('other', final.id));
  });

  test('start --follow and logs -f show a stream of output in order, each line once', async () => {
    const pad = '0'.repeat(1000);
    const expected = Array.from({ length: 300 }, (_, i) => `line-${i + 1} ${pad}\n`).join('') + 'line-301\n';
    const followed = expectExit(await h.cli(['start', 'stream', '-w', 'burst', '--follow']), 0);
    assert.ok(followed.stdout === expected, `start --follow printed the lines out of order or not once each: ${followed.stdout.replace(/ 0+/g, '').slice(0, 300)}`);

    // logs -f joins while the step runs, so it catches up on a long history and then follows.
    const task = await h.json<TaskRecord>(['start', 'stream', '-w', 'burst']);
    await h.waitTask(task.id, 'the stream to have begun', (t) => t.status === 'running');
    const logs = expectExit(await h.cli(['logs', task.id, '-f']), 0);
    const lines = logs.stdout.split('\n').filter((l) => l.startsWith('line-'));
    assert.ok(lines.join('\n') + '\n' === expected, `logs -f printed the lines out of order or not once each: ${lines.slice(0, 12).map((l) => l.replace(/ 0+/, '')).join(' ')}`);
    assert.notEqual(h.readTaskFile('burst', task.id).step_results[0]?.output_truncated, true);
  });

  test('list --json: summaries, newest first; --status, -w, --template, --limit', async () => {
    const all = await h.json<TaskSummary[]>(['list']);
    assert.ok(all.length >= 11, `only ${all.length} tasks`);
    for (const t of all) for (const k of SUMMARY_KEYS) assert.ok(k in t, `summary without ${k}: ${JSON.stringify(t)}`);
    const created = all.map((t) => t.created_at);
    assert.deepEqual(created, [...created].sort().reverse(), 'not newest first');
    const onDisk = h.readTaskFile('ws', ids['quick']!);
    const mine = all.find((t) => t.id === ids['quick']);
    assert.ok(mine);
    for (const k of SUMMARY_KEYS) assert.deepEqual(mine[k as keyof TaskSummary], onDisk[k as keyof TaskRecord], k);

    const [failed, abandoned, busy, three, both, one] = await Promise.all([
      h.json<TaskSummary[]>(['list', '--status', 'failed']),
      h.json<TaskSummary[]>(['list', '--status', 'abandoned']),
      h.json<TaskSummary[]>(['list', '-w', 'busy']),
      h.json<TaskSummary[]>(['list', '--template', 'three']),
      h.json<TaskSummary[]>(['list', '--template', 'three', '-w', 'ws']),
      h.json<TaskSummary[]>(['list', '--limit', '1']),
    ]);
    assert.ok(failed.length >= 3);
    assert.ok(failed.every((t) => t.status === 'failed'));
    assert.ok(failed.some((t) => t.id === ids['failing']));
    assert.deepEqual(abandoned.map((t) => t.template), ['sleeper']);
    assert.deepEqual(busy.map((t) => t.workspace), ['busy', 'busy']);
    assert.equal(three.length, 2);
    assert.ok(three.every((t) => t.template === 'three' && t.workspace === 'other'));
    assert.deepEqual(both, []);
    assert.deepEqual(one, all.slice(0, 1));

    const text = expectExit(await h.cli(['list', '-w', 'busy']), 0);
    assert.match(text.stdout, /^ID\s+STATUS\s+TEMPLATE\s+WORKSPACE\s+STEP\s+CREATED/);
    assert.match(text.stdout, new RegExp(`${ids['busy']}\\s+completed\\s+quick\\s+busy`));
    const bad = expectExit(await h.cli(['list', '--status', 'sleeping']), 2);
    assert.equal(bad.stdout, '');
  });

  test('show: steps, attempts and result; --json is task.json', async () => {
    const id = ids['three']!;
    const r = expectExit(await h.cli(['show', id]), 0);
    assert.match(r.stdout, new RegExp(`^${id}\\s+completed`));
    for (const step of ['one', 'two', 'three']) assert.match(r.stdout, new RegExp(`\\b${step}\\s+shell\\s+completed\\s+1\\b`));
    assert.match(r.stdout, /one\.output\.1\.log/);
    assert.deepEqual(await h.json<TaskRecord>(['show', id]), h.readTaskFile('other', id));
    const failed = expectExit(await h.cli(['show', ids['failing']!]), 0);
    assert.match(failed.stdout, /resume with: atlas resume/);
  });

  test('logs: the task log as text, as JSON, for one step', async () => {
    const id = ids['three']!;
    const text = expectExit(await h.cli(['logs', id]), 0);
    assert.match(text.stdout, /created/);
    assert.match(text.stdout, /out-1\n[^]*out-2\n[^]*out-3\n/);
    assert.match(text.stdout, /completed/);

    const records = await h.json<LogRecord[]>(['logs', id]);
    assert.equal(records[0]?.event, 'task_created');
    const fileLines = fs.readFileSync(path.join(h.taskDir('other', id), 'task.log'), 'utf8').trim().split('\n');
    assert.equal(records.length, fileLines.length);
    assert.deepEqual(records.filter((r) => r.event === 'step_finished').map((r) => r['step_name']), ['one', 'two', 'three']);

    const two = await h.json<LogRecord[]>(['logs', id, '--step', 'two']);
    assert.ok(two.length > 0);
    assert.ok(two.every((r) => r['step'] === 'two' || r['step_name'] === 'two'), JSON.stringify(two));
    assert.ok(two.some((r) => r.event === 'output' && String(r['text']).includes('err-2')));
    const tail = await h.json<LogRecord[]>(['logs', id, '--tail', '2']);
    assert.deepEqual(tail, records.slice(-2));
  });

  test('logs -f follows a running task and ends when it settles', async () => {
    const task = await h.json<TaskRecord>(['start', 'slow4', '-w', 'other']);
    const r = expectExit(await h.cli(['logs', task.id, '-f'], { timeoutMs: 60_000 }), 0);
    assert.match(r.stdout, /step-1\n[^]*step-2\n[^]*step-3\n[^]*step-4\n/);
    assert.match(r.stderr, new RegExp(`${task.id} completed`));
    assert.equal(h.readTaskFile('other', task.id).status, 'completed');
    // Each record once: the live stream and the history do not overlap.
    for (const n of [1, 2, 3, 4]) assert.equal(r.stdout.split(`step-${n}\n`).length, 2, r.stdout);

    // Of a settled task: prints the history and ends at once; --json prints JSON lines.
    const again = expectExit(await h.cli(['logs', task.id, '-f', '--json']), 0);
    const lines = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogRecord);
    assert.equal(lines[0]?.event, 'task_created');
    assert.equal(lines.length, fs.readFileSync(path.join(h.taskDir('other', task.id), 'task.log'), 'utf8').trim().split('\n').length);
  });

  test('artifacts: the list, and one printed as it is on disk', async () => {
    const id = ids['three']!;
    const dir = path.join(h.taskDir('other', id), 'artifacts');
    const list = await h.json<Array<{ name: string; size: number }>>(['artifacts', id]);
    assert.deepEqual(list.map((a) => a.name).sort(), fs.readdirSync(dir).sort());
    assert.deepEqual(list.map((a) => a.name).sort(), ['one.output.1.log', 'three.output.1.log', 'two.output.1.log']);
    for (const a of list) assert.equal(a.size, fs.statSync(path.join(dir, a.name)).size);
    const text = expectExit(await h.cli(['artifacts', id]), 0);
    assert.match(text.stdout, /^NAME\s+SIZE\s+MODIFIED/);

    const one = expectExit(await h.cli(['artifacts', id, 'two.output.1.log']), 0);
    assert.equal(one.stdout, fs.readFileSync(path.join(dir, 'two.output.1.log'), 'utf8'));
    assert.match(one.stdout, /out-2/);
    const j = await h.json<{ name: string; encoding: string; content: string; size: number }>(['artifacts', id, 'two.output.1.log']);
    assert.equal(j.name, 'two.output.1.log');
    assert.equal(j.encoding, 'utf8');
    assert.equal(j.content, one.stdout);
    assert.equal(j.size, Buffer.byteLength(one.stdout));

    expectExit(await h.cli(['artifacts', id, 'nope.log']), 4);
    expectExit(await h.cli(['artifacts', id, '../task.json']), 2);
    await h.stopDaemon();
  });
});
