// Damaged files on disk, built directly with the daemon stopped, then a real daemon start
// (DESIGN §6): a task.json that is garbage, empty or truncated is restored from
// task.json.bak; with no good backup it is rebuilt from task.log (whose garbage and torn
// lines are skipped, and reported by doctor as info); with neither, the task is moved to
// <home>/quarantine/, never deleted, and reported by `atlas doctor --json`. Temp files left
// by dead writers are swept at start. `atlas doctor` finds and repairs the same on demand.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { DoctorReport } from '../../src/engine/doctor.js';
import type { RecoveryReport } from '../../src/engine/engine.js';
import type { TaskRecord } from '../../src/store/records.js';
import {
  cli,
  countLines,
  createWorkspaces,
  readTask,
  startTask,
  startTheDaemon,
  stopTheDaemon,
  taskDir,
  waitFor,
  waitForTask,
  withSandbox,
  writeTemplateText,
  type Sandbox,
} from './harness.js';

type Doctor = DoctorReport & { recovery_at_start: RecoveryReport | null };

/** A shell step that appends its line, then a human step: the task then waits, not terminal and not moving. */
function writeApproveTemplate(sb: Sandbox): void {
  writeTemplateText(
    sb,
    'approve',
    [
      'name: approve',
      'steps:',
      '  - name: build',
      '    type: shell',
      `    run: ${JSON.stringify(`echo "$ATLAS_TASK_ID:$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt # ${sb.marker}`)}`,
      `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
      '  - name: review',
      '    type: human',
      '    prompt: look at it',
    ].join('\n') + '\n',
  );
}

/** Starts one task per workspace and waits until each awaits approval; stops the daemon. */
async function tasksAwaitingApproval(sb: Sandbox): Promise<Array<{ ws: string; id: string }>> {
  writeApproveTemplate(sb);
  const pid = await startTheDaemon(sb);
  await createWorkspaces(sb);
  const out: Array<{ ws: string; id: string }> = [];
  for (const ws of Object.keys(sb.workspaces)) out.push({ ws, id: (await startTask(sb, 'approve', ws)).id });
  for (const t of out) await waitForTask(sb, t.ws, t.id, 'awaiting approval', (x) => x.status === 'awaiting_approval');
  await stopTheDaemon(sb, pid);
  return out;
}

function doctor(sb: Sandbox, repair = false): { status: number | null; report: Doctor } {
  const r = cli(sb, ['doctor', '--json', ...(repair ? ['--repair'] : [])]);
  assert.ok(r.stdout.trim().startsWith('{'), `doctor --json printed no JSON (exit ${r.status}): ${r.stdout}${r.stderr}`);
  return { status: r.status, report: JSON.parse(r.stdout) as Doctor };
}

function buildLines(sb: Sandbox, ws: string, id: string): number {
  return countLines(path.join(sb.workspaces[ws]!, 'lines.txt'), `${id}:build:1`);
}

function approveAll(sb: Sandbox, tasks: Array<{ ws: string; id: string }>): void {
  for (const t of tasks) {
    const r = cli(sb, ['approve', t.id]);
    assert.equal(r.status, 0, `approve ${t.id}: ${r.stderr}`);
  }
}

test('a garbage, empty or truncated task.json is repaired at start from the most advanced of task.json.bak and task.log', { timeout: 90_000 }, async () => {
  await withSandbox({ workspaces: ['w1', 'w2', 'w3'] }, async (sb) => {
    const tasks = await tasksAwaitingApproval(sb);
    const [garbage, empty, truncated] = tasks as [{ ws: string; id: string }, { ws: string; id: string }, { ws: string; id: string }];
    const file = (t: { ws: string; id: string }) => path.join(taskDir(sb, t.ws, t.id), 'task.json');
    fs.writeFileSync(file(garbage), Buffer.from([0x00, 0xff, 0x7b, 0x22, 0x6e, 0x6f, 0x74, 0x20, 0x6a, 0x73, 0x6f, 0x6e]));
    fs.writeFileSync(file(empty), '');
    const whole = fs.readFileSync(file(truncated));
    fs.writeFileSync(file(truncated), whole.subarray(0, Math.floor(whole.length / 2)));

    const pid = await startTheDaemon(sb);
    for (const t of tasks) {
      // Every task.json parses again; the restored checkpoint carries the task back to its human step.
      const back = await waitForTask(sb, t.ws, t.id, 'awaiting approval again', (x) => x.status === 'awaiting_approval');
      assert.equal(back.steps[0]!.status, 'completed');
      assert.equal(buildLines(sb, t.ws, t.id), 1, `${t.id}: the finished build step ran again`);
    }
    const { status, report } = doctor(sb);
    assert.equal(status, 0, JSON.stringify(report.findings));
    const repaired = report.recovery_at_start!.repaired.map((r) => [r.id, r.action]).sort();
    // The log records the human step's start after the backup's checkpoint, so it is the further along.
    assert.deepEqual(repaired, tasks.map((t) => [t.id, 'rebuilt_from_log']).sort());
    assert.equal(report.findings.filter((f) => f.kind === 'task_unreadable').length, 0);

    approveAll(sb, tasks);
    for (const t of tasks) await waitForTask(sb, t.ws, t.id, 'completed', (x) => x.status === 'completed');
    await stopTheDaemon(sb, pid);
  });
});

test('with no good task.json.bak a task is rebuilt from task.log; garbage and torn log lines are skipped and reported as info', { timeout: 90_000 }, async () => {
  await withSandbox({ workspaces: ['w1'] }, async (sb) => {
    const [t] = (await tasksAwaitingApproval(sb)) as [{ ws: string; id: string }];
    const dir = taskDir(sb, t.ws, t.id);
    const before = readTask(sb, t.ws, t.id);
    fs.writeFileSync(path.join(dir, 'task.json'), '{"schema_version": "1.0", "id": ');
    fs.writeFileSync(path.join(dir, 'task.json.bak'), 'not json at all\n');
    // A garbage line, then a torn record (no newline) as a killed writer leaves it.
    fs.appendFileSync(path.join(dir, 'task.log'), 'garbage \x01\x02 not a record\n{"level":"info","time":"2026-01-01T00:00:00.000Z","event":"step_sta');

    const pid = await startTheDaemon(sb);
    const rebuilt = await waitForTask(sb, t.ws, t.id, 'awaiting approval again', (x) => x.status === 'awaiting_approval');
    assert.equal(rebuilt.id, before.id);
    assert.equal(rebuilt.steps[0]!.status, 'completed', 'the log says build finished: it must stay finished');
    assert.equal(rebuilt.step_results.filter((r) => r.step_name === 'build' && r.status === 'completed').length, 1);
    assert.equal(buildLines(sb, t.ws, t.id), 1);

    const { status, report } = doctor(sb);
    assert.equal(status, 0, JSON.stringify(report.findings));
    assert.deepEqual(report.recovery_at_start!.repaired.map((r) => [r.id, r.action]), [[t.id, 'rebuilt_from_log']]);
    const torn = report.findings.find((f) => f.kind === 'log_torn_lines');
    assert.ok(torn, `doctor did not report the torn lines: ${JSON.stringify(report.findings)}`);
    assert.equal(torn.severity, 'info');
    assert.match(torn.message, /^2 torn/);

    // New records start on a fresh line: the torn one never swallows them.
    approveAll(sb, [t]);
    await waitForTask(sb, t.ws, t.id, 'completed', (x) => x.status === 'completed');
    const again = doctor(sb).report.findings.find((f) => f.kind === 'log_torn_lines');
    assert.match(again?.message ?? '', /^2 torn/);
    const logs = cli(sb, ['logs', t.id, '--json']);
    assert.equal(logs.status, 0, logs.stderr);
    assert.match(logs.stdout, /"approved"/);
    await stopTheDaemon(sb, pid);
  });
});

test('a task with no readable task.json, backup or log is moved to quarantine/, not deleted, and reported by doctor', { timeout: 90_000 }, async () => {
  await withSandbox({ workspaces: ['w1', 'w2'] }, async (sb) => {
    const [lost, healthy] = (await tasksAwaitingApproval(sb)) as [{ ws: string; id: string }, { ws: string; id: string }];
    const dir = taskDir(sb, lost.ws, lost.id);
    fs.writeFileSync(path.join(dir, 'task.json'), 'garbage');
    fs.writeFileSync(path.join(dir, 'task.json.bak'), '');
    fs.writeFileSync(path.join(dir, 'task.log'), 'also garbage\n{"event":"output","text":"no task_created here"}\n');

    const pid = await startTheDaemon(sb);
    assert.equal(fs.existsSync(dir), false, 'the unrecoverable task should have left its workspace');
    const qdir = path.join(sb.home, 'quarantine');
    const moved = fs.readdirSync(qdir).filter((n) => n.includes(lost.id));
    assert.equal(moved.length, 1, `quarantine holds: ${fs.readdirSync(qdir).join(', ')}`);
    // Kept as it was, for a person to look at.
    assert.equal(fs.readFileSync(path.join(qdir, moved[0]!, 'task.json'), 'utf8'), 'garbage');
    assert.ok(fs.existsSync(path.join(qdir, moved[0]!, 'task.log')));

    const { status, report } = doctor(sb);
    assert.equal(status, 0, JSON.stringify(report.findings));
    const q = report.findings.find((f) => f.kind === 'quarantine');
    assert.ok(q && q.message.includes(lost.id), `doctor did not report the quarantined task: ${JSON.stringify(report.findings)}`);
    assert.deepEqual(report.recovery_at_start!.repaired.map((r) => [r.id, r.action]), [[lost.id, 'quarantined']]);
    assert.ok(report.recovery_at_start!.unreadable.some((u) => u.id === lost.id));

    // The other task is untouched and the daemon carries on.
    const list = JSON.parse(cli(sb, ['list', '--json']).stdout) as Array<{ id: string }>;
    assert.deepEqual(list.map((x) => x.id), [healthy.id]);
    approveAll(sb, [healthy]);
    await waitForTask(sb, healthy.ws, healthy.id, 'completed', (x) => x.status === 'completed');
    await stopTheDaemon(sb, pid);
  });
});

test('temp files left by dead writers are swept at start; doctor finds and repairs a damaged task.json on demand', { timeout: 90_000 }, async () => {
  await withSandbox({ workspaces: ['w1', 'w2'] }, async (sb) => {
    const [a, b] = (await tasksAwaitingApproval(sb)) as [{ ws: string; id: string }, { ws: string; id: string }];
    // Above pid_max (at most 2^22 on Linux): a writer that is certainly dead.
    const dead = 4_194_999;
    const dir = taskDir(sb, a.ws, a.id);
    fs.writeFileSync(path.join(dir, `task.json.tmp-${dead}-7`), '{"half": ');
    fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'artifacts', `build.output.1.log.tmp-${dead}-8`), 'partial');

    const pid = await startTheDaemon(sb);
    // The task is idle (awaiting approval), so the sweep runs just after the start, in the background.
    const temps = () => [...fs.readdirSync(dir), ...fs.readdirSync(path.join(dir, 'artifacts'))].filter((n) => n.includes('.tmp-'));
    await waitFor('the temp files of the dead writer to be swept', () => temps().length === 0, 10_000);
    assert.match(fs.readFileSync(path.join(sb.home, 'logs', 'daemon.log'), 'utf8'), /swept 2 temp file/);
    const first = doctor(sb);
    assert.equal(first.status, 0, JSON.stringify(first.report.findings));
    assert.equal(first.report.findings.filter((f) => f.kind === 'temp_files').length, 0);

    // While the daemon runs: b's checkpoint is damaged behind its back (b is idle, awaiting approval).
    const bFile = path.join(taskDir(sb, b.ws, b.id), 'task.json');
    fs.writeFileSync(bFile, '{"truncated":');
    const found = doctor(sb);
    assert.equal(found.status, 1, 'doctor should fail while a problem is left');
    const f = found.report.findings.find((x) => x.kind === 'task_unreadable');
    assert.ok(f, JSON.stringify(found.report.findings));
    assert.equal(f.target, bFile);
    assert.equal(f.fixed, false);
    assert.equal(fs.readFileSync(bFile, 'utf8'), '{"truncated":', 'doctor without --repair must change nothing');

    const fixed = doctor(sb, true);
    assert.equal(fixed.status, 0, JSON.stringify(fixed.report.findings));
    assert.ok(fixed.report.findings.some((x) => x.kind === 'task_unreadable' && x.fixed));
    assert.deepEqual(fixed.report.repaired_tasks, [b.id]);
    const show = cli(sb, ['show', b.id, '--json']);
    assert.equal(show.status, 0, show.stderr);
    assert.equal((JSON.parse(show.stdout) as TaskRecord).id, b.id);

    approveAll(sb, [a, b]);
    for (const t of [a, b]) await waitForTask(sb, t.ws, t.id, 'completed', (x) => x.status === 'completed');
    await stopTheDaemon(sb, pid);
  });
});
