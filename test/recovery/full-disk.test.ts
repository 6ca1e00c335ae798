// A full disk during a checkpoint: the home lives on a small tmpfs, which the test fills
// while a task runs. The checkpoint that ends the running step cannot be written; the error
// must be reported (daemon log), task.json must still parse and hold its last good revision,
// and the daemon must keep serving. Once space is freed the task goes on to completion.
//
// Needs root (mount -t tmpfs); otherwise the test is skipped with the reason.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLI_MAIN } from '../../src/client/client.js';
import {
  call,
  cleanup,
  countLines,
  createWorkspaces,
  killEverything,
  makeSandbox,
  markerProcesses,
  pidAlive,
  readTask,
  startTask,
  startTheDaemon,
  stopTheDaemon,
  waitFor,
  waitForTask,
  writeTemplateText,
  type Sandbox,
} from './harness.js';

function mountTmpfs(dir: string, size: string): string | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
  return undefined;
}

function unmount(dir: string): void {
  const r = spawnSync('umount', [dir], { timeout: 10_000 });
  if (r.status !== 0) spawnSync('umount', ['-l', dir], { timeout: 10_000 });
}

/** Fills the filesystem holding `dir` to the last byte; returns the filler's path. */
function fill(dir: string): string {
  const file = path.join(dir, 'filler');
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1 << 20, 64 << 10, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 0x61);
      for (;;) {
        try {
          fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Appends newlines to `file` until the filesystem refuses one more byte: a tmpfs file's last
 *  page still takes small appends after the filesystem is full, which hid the daemon's own
 *  log failing. Blank lines are harmless in a JSON-lines log. */
function fillFileTail(file: string): void {
  const fd = fs.openSync(file, 'a');
  const nl = Buffer.alloc(512, 0x0a);
  try {
    for (const size of [512, 1]) {
      for (;;) {
        try {
          fs.writeSync(fd, nl, 0, size);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

function daemonLog(sb: Sandbox): string {
  try {
    return fs.readFileSync(path.join(sb.home, 'logs', 'daemon.log'), 'utf8');
  } catch {
    return '';
  }
}

async function fullDisk(t: TestContext, separateLogs: boolean): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-recovery-disk-'));
  const home = path.join(root, 'home');
  const logs = path.join(home, 'logs');
  fs.mkdirSync(home, { mode: 0o700 });
  const why = mountTmpfs(home, '8m');
  if (why) {
    console.log(`# skipped: ${why}`);
    fs.rmSync(root, { recursive: true, force: true });
    t.skip(why);
    return;
  }
  // With separateLogs the daemon's own log gets a filesystem of its own, so the report of the
  // error can be read; task.json, task.log, the artifacts and the lock files all stay on the
  // full one. Without it, the daemon cannot even log: it must survive that too.
  fs.mkdirSync(logs, { mode: 0o700 });
  const whyLogs = separateLogs ? mountTmpfs(logs, '8m') : 'not wanted';
  const sb = makeSandbox({ root, workspaces: ['w1'] });
  const ws = sb.workspaces['w1']!;
  let failure: unknown;
  try {
    writeTemplateText(
      sb,
      'disk',
      [
        'name: disk',
        'steps:',
        ...['one', 'gate', 'three', 'four'].flatMap((name) => [
          `  - name: ${name}`,
          '    type: shell',
          `    run: ${JSON.stringify(`${name === 'gate' ? 'while [ ! -f go ]; do sleep 0.05; done; ' : ''}echo "$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt; echo some output # ${sb.marker}`)}`,
          `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
        ]),
      ].join('\n') + '\n',
    );
    const pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    const task = await startTask(sb, 'disk', 'w1');
    const before = await waitForTask(sb, 'w1', task.id, 'step gate running', (x) => x.current_step === 1 && x.steps[1]?.status === 'running' && x.steps[1].process !== null);

    const filler = fill(home);
    fs.writeFileSync(path.join(ws, 'go'), ''); // the workspace is not on the full disk
    // The step ends; the checkpoint that records it cannot be written.
    if (separateLogs) {
      assert.equal(whyLogs, undefined, `the log tmpfs did not mount: ${whyLogs}`);
      await waitFor('the storage error to be reported', () => /ENOSPC|disk full|no space/i.test(daemonLog(sb)), 20_000, 50);
    } else {
      // Nothing can report it on disk; the step's process ending is what there is to wait for.
      await waitFor('the step to end', () => countLines(path.join(ws, 'lines.txt'), 'gate:1') === 1 && markerProcesses(sb).length === 0, 20_000, 50);
    }
    // The daemon keeps serving, and task.json still parses, at its last good revision.
    const ping = (await call(sb, 'daemon.ping')) as { pid: number };
    assert.equal(ping.pid, pid);
    const during = readTask(sb, 'w1', task.id);
    assert.equal(during.revision, before.revision);
    assert.equal(during.steps[1]!.status, 'running');
    if (separateLogs) {
      // While the disk stays full the engine keeps trying; nothing it tries gets half written.
      await waitFor('a retry to fail too', () => (daemonLog(sb).match(/stopped: [^"]*ENOSPC/g) ?? []).length >= 2, 20_000, 50);
      assert.equal(readTask(sb, 'w1', task.id).revision, before.revision);
    }
    assert.ok(pidAlive(pid), 'the daemon died on a full disk');

    fs.rmSync(filler);
    const done = await waitForTask(sb, 'w1', task.id, 'completed once space is back', (x) => x.status === 'completed', 30_000);
    for (const name of ['one', 'three', 'four']) assert.equal(countLines(path.join(ws, 'lines.txt'), `${name}:1`), 1, `${name} ran once`);
    // gate ran once before the disk filled (its end was never recorded) and once more after.
    const gate = done.step_results.filter((r) => r.step_name === 'gate');
    const finished = gate.filter((r) => r.status === 'completed');
    assert.equal(finished.length, 1);
    assert.equal(countLines(path.join(ws, 'lines.txt'), `gate:${finished[0]!.attempt}`), 1);
    assert.ok(finished[0]!.attempt >= 2, 'the attempt whose end could not be recorded does not count as finished');
    if (separateLogs) assert.match(daemonLog(sb), /ENOSPC/);

    await stopTheDaemon(sb, pid);
    assert.deepEqual(markerProcesses(sb), []);
  } catch (err) {
    failure = err;
  } finally {
    killEverything(sb);
    await waitFor('processes to go', () => markerProcesses(sb).length === 0, 5000).catch(() => undefined);
    if (failure) console.log(`# daemon log:\n${daemonLog(sb).split('\n').slice(-30).join('\n')}`);
    if (!whyLogs) unmount(logs);
    unmount(home);
    await cleanup(sb);
  }
  if (failure) throw failure;
}

test('a full disk during a checkpoint: the error is reported, task.json keeps its last good revision, the task completes once space is freed', { timeout: 90_000 }, (t) => fullDisk(t, true));

test('a full disk that also holds the daemon log: the daemon survives, keeps serving, and the task completes once space is freed', { timeout: 90_000 }, (t) => fullDisk(t, false));

// The defect a newcomer hit: a step's output fills the disk that also holds daemon.log, so the
// line reporting the failed run could not be written either; that error escaped the engine's
// catch block, no retry was scheduled, and the task stayed `running` until a restart. Now the
// report cannot fail, a follower is told the disk is full, and the task carries on once there
// is space.
test('a full disk while a step prints, with daemon.log full too: a follower is told, and the task completes once space is freed', { timeout: 90_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-recovery-disk-'));
  const home = path.join(root, 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  const why = mountTmpfs(home, '4m');
  if (why) {
    fs.rmSync(root, { recursive: true, force: true });
    t.skip(why);
    return;
  }
  const sb = makeSandbox({ root, workspaces: ['w1'] });
  const ws = sb.workspaces['w1']!;
  let follower: ChildProcess | undefined;
  let failure: unknown;
  try {
    const print = `head -c 200000 /dev/zero | tr '\\0' a; echo`;
    writeTemplateText(
      sb,
      'loud',
      [
        'name: loud',
        'steps:',
        '  - name: one',
        '    type: shell',
        `    run: ${JSON.stringify(`while [ ! -f go ]; do sleep 0.05; done; ${print}; echo "$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt # ${sb.marker}`)}`,
        `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
        '  - name: two',
        '    type: shell',
        `    run: ${JSON.stringify(`${print}; echo "$ATLAS_STEP:$ATLAS_ATTEMPT" >> lines.txt # ${sb.marker}`)}`,
        `    env: { ATLAS_TEST_MARK: ${sb.marker} }`,
      ].join('\n') + '\n',
    );
    const pid = await startTheDaemon(sb);
    await createWorkspaces(sb);
    const task = await startTask(sb, 'loud', 'w1');
    await waitForTask(sb, 'w1', task.id, 'step one running', (x) => x.steps[0]?.status === 'running' && x.steps[0].process !== null);
    let stderr = '';
    follower = spawn(process.execPath, [CLI_MAIN, '--home', sb.home, 'logs', task.id, '-f'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    follower.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const followerExit = new Promise<number | null>((resolve) => follower!.on('exit', (code) => resolve(code)));

    const filler = fill(home);
    fillFileTail(path.join(home, 'logs', 'daemon.log'));
    fs.writeFileSync(path.join(ws, 'go'), '');
    await waitFor('the follower to say the disk is full', () => /disk is full/.test(stderr), 20_000, 50);
    assert.ok(pidAlive(pid), 'the daemon died on a full disk');
    assert.equal(readTask(sb, 'w1', task.id).status, 'running');

    fs.rmSync(filler);
    fs.truncateSync(path.join(home, 'logs', 'daemon.log'), 0);
    const done = await waitForTask(sb, 'w1', task.id, 'completed once space is back', (x) => x.status === 'completed', 40_000);
    assert.equal(done.steps.map((s) => s.status).join(','), 'completed,completed');
    assert.equal(countLines(path.join(ws, 'lines.txt'), 'two:1'), 1, 'step two ran once');
    assert.equal(await followerExit, 0, stderr);
    await stopTheDaemon(sb, pid);
    assert.deepEqual(markerProcesses(sb), []);
  } catch (err) {
    failure = err;
  } finally {
    follower?.kill('SIGKILL');
    killEverything(sb);
    await waitFor('processes to go', () => markerProcesses(sb).length === 0, 5000).catch(() => undefined);
    if (failure) console.log(`# daemon log:\n${daemonLog(sb).split('\n').filter(Boolean).slice(-30).join('\n')}`);
    unmount(home);
    await cleanup(sb);
  }
  if (failure) throw failure;
});
