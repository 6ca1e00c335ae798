// processGroupAlive: answered from the leader alone when it lives, and by a scan when the
// leader is gone but members remain; a group of zombies counts as dead (nothing runs there,
// no signal reaches it), and so does a group that no longer exists.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { killGroup, pidAlive, processGroupAlive } from '../../src/util/proc.js';
import { waitFor } from '../helpers/daemon.js';

function start(script: string): Promise<ChildProcess> {
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve(child));
    child.once('error', reject);
  });
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
  });
}

test('a group with a live leader is alive; once killed and reaped it is not', async () => {
  const child = await start('exec sleep 600');
  const exited = new Promise((r) => child.once('exit', r));
  assert.equal(processGroupAlive(child.pid!), true);
  killGroup(child.pid!, 'SIGKILL');
  await exited;
  assert.equal(processGroupAlive(child.pid!), false);
});

test('a group whose leader exited is alive while a member still runs', async () => {
  // The leader prints its background child's pid and exits; the child stays in the group.
  const child = await start('sleep 600 & echo $!; exit 0');
  const member = Number(await firstLine(child));
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  try {
    await waitFor('the leader to be reaped', () => !pidAlive(child.pid!));
    assert.equal(processGroupAlive(child.pid!), true, 'the group has a running member');
  } finally {
    killGroup(child.pid!, 'SIGKILL');
  }
  // The member is reparented; whoever adopted it reaps it (or leaves a zombie): dead either way.
  await waitFor('the group to be gone', () => !processGroupAlive(child.pid!));
  assert.equal(pidAlive(member), false);
});

test('a group of nothing but an unreaped zombie counts as dead', async () => {
  // setsid makes a group of its own (pgid = its pid) that exits at once; its parent (exec'd
  // into sleep) never reaps it, so it stays a zombie in a group that kill() still finds.
  const parent = await start('setsid sh -c "exit 0" & echo $!; exec sleep 600');
  try {
    const zombie = Number(await firstLine(parent));
    await waitFor('the setsid child to become a zombie', () => !pidAlive(zombie));
    let groupExists = true;
    try {
      process.kill(-zombie, 0);
    } catch {
      groupExists = false;
    }
    assert.ok(groupExists, 'kill() still finds the zombie group (else this tests nothing)');
    assert.equal(processGroupAlive(zombie), false, 'a zombie-only group is not alive');
  } finally {
    killGroup(parent.pid!, 'SIGKILL');
  }
});
