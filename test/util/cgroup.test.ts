// The per-attempt cgroup: a double-forked `setsid` grandchild (reparented to init, out of
// the step's process group and session) is still in the cgroup and dies with killAll.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cgroupBase, createStepCgroup, existingStepCgroup } from '../../src/util/cgroup.js';
import { isGone, waitFor } from '../helpers/daemon.js';

const available = cgroupBase() !== undefined;

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

test('killAll ends a double-forked setsid grandchild that left the process group', { skip: available ? false : 'no writable cgroup v2 here' }, async () => {
  const home = path.join(os.tmpdir(), `atlas-cgroup-test-${process.pid}`);
  const cg = await createStepCgroup(home, `task-test.step.1`);
  assert.ok(cg, 'a cgroup was created');
  // Held before it runs anything (as the step gate does) until it is in the cgroup.
  const child = spawn('/bin/sh', ['-c', 'read go; (setsid sh -c "sleep 502" &); exec sleep 600'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  await new Promise((r) => child.once('spawn', r));
  try {
    await cg.add(child.pid!);
    child.stdin!.write('go\n');
    // The grandchild is the `sleep 502` (the subshells that fork it come and go first).
    const grandchild = await waitFor('the grandchild to start', async () => (await cg.pids()).find((p) => cmdline(p) === 'sleep 502'));
    // It really escaped: its own session, not the child's group.
    child.kill('SIGKILL');
    await waitFor('the step process to die', () => isGone(child.pid!));
    assert.equal(isGone(grandchild), false, 'the grandchild survives its parent');
    const left = await cg.killAll(5000);
    assert.deepEqual(left, []);
    await waitFor('the grandchild to die', () => isGone(grandchild));
    await cg.remove();
    assert.equal(existingStepCgroup(home, 'task-test.step.1'), undefined);
  } finally {
    child.kill('SIGKILL');
    await cg.killAll(2000);
    await cg.remove().catch(() => undefined);
  }
});
