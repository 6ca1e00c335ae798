// One lock protocol for the home lock and the task locks (claimed-lock.ts): the same crash
// points and the same liveness rule, checked on both kinds of lock built directly on disk.
// A holder killed anywhere leaves a claim naming a dead process, so its lock is broken at
// once; a lock that a live process may hold (by its claim or by its record) never is.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { acquireHomeLock } from '../../src/daemon/home-lock.js';
import { lockTaskDir } from '../../src/store/task-lock.js';
import { processStartTicks } from '../../src/util/proc.js';
import { deadPid, tempHome, within } from './helpers.js';

interface Parts {
  lock?: boolean;
  claimPid?: number;
  ownerPid?: number;
}

/** A kind of lock: where its files are, and one try at taking it (true: taken and released). */
interface Kind {
  name: string;
  files(dir: string): { lock: string; owner: string; claimsBase: string };
  tryOnce(dir: string): Promise<boolean>;
}

const KINDS: Kind[] = [
  {
    name: 'the home lock',
    files: (dir) => ({ lock: path.join(dir, 'daemon.lock'), owner: path.join(dir, 'daemon.json'), claimsBase: path.join(dir, 'daemon.lock') }),
    async tryOnce(dir) {
      const got = await acquireHomeLock(dir, path.join(dir, 'daemon.lock'), { pid: path.join(dir, 'daemon.pid'), owner: path.join(dir, 'daemon.json') }, { pid: process.pid, start_ticks: processStartTicks(process.pid) });
      if (!got.ok) return false;
      assert.equal(fs.statSync(path.join(dir, 'daemon.lock')).mode & 0o777, 0o700, 'the home lock is 0700');
      await got.lock.release();
      return true;
    },
  },
  {
    name: 'a task lock',
    files: (dir) => ({ lock: path.join(dir, 'task.lock'), owner: path.join(dir, 'task.lock.owner'), claimsBase: path.join(dir, 'task.lock.owner') }),
    async tryOnce(dir) {
      try {
        await (await lockTaskDir(dir, { waitMs: 0 })).release();
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === 'locked') return false;
        throw err;
      }
    },
  },
];

function leave(kind: Kind, dir: string, parts: Parts): void {
  const f = kind.files(dir);
  if (parts.lock) fs.mkdirSync(f.lock);
  if (parts.claimPid !== undefined) {
    fs.writeFileSync(`${f.claimsBase}.claim-${parts.claimPid}-1`, JSON.stringify({ pid: parts.claimPid, start_ticks: processStartTicks(parts.claimPid) }));
  }
  if (parts.ownerPid !== undefined) fs.writeFileSync(f.owner, JSON.stringify({ pid: parts.ownerPid, start_ticks: processStartTicks(parts.ownerPid) }) + '\n');
}

function sleeper(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const h = await tempHome();
  try {
    const dir = path.join(h.root, 'lockdir');
    fs.mkdirSync(dir, { mode: 0o700 });
    await fn(dir);
  } finally {
    await h.cleanup();
  }
}

const CRASHES: Array<[string, (dead: number) => Parts]> = [
  ['after taking the lock, before recording itself', (dead) => ({ lock: true, claimPid: dead })],
  ['while holding the lock', (dead) => ({ lock: true, claimPid: dead, ownerPid: dead })],
  ['while releasing, after forgetting itself', (dead) => ({ lock: true, claimPid: dead })],
  ['holding a lock taken without claims (owner record only)', (dead) => ({ lock: true, ownerPid: dead })],
];

for (const kind of KINDS) {
  for (const [when, parts] of CRASHES) {
    test(`${kind.name}: a holder killed ${when} leaves a lock the next one takes at once`, { timeout: 30_000 }, async () => {
      await withDir(async (dir) => {
        leave(kind, dir, parts(await deadPid()));
        assert.equal(await kind.tryOnce(dir), true);
        assert.deepEqual(fs.readdirSync(dir), [], 'nothing of the dead holder or of ours is left');
      });
    });
  }

  test(`${kind.name}: a live claim or a live record keeps the lock, whatever else is dead`, { timeout: 30_000 }, async () => {
    const holder = sleeper();
    const gone = new Promise((r) => holder.once('exit', r));
    try {
      await withDir(async (dir) => {
        const dead = await deadPid();
        // The live process has only its record; every claim beside the lock names a dead one.
        leave(kind, dir, { lock: true, claimPid: dead, ownerPid: holder.pid! });
        assert.equal(await kind.tryOnce(dir), false, 'a live record keeps the lock');
        fs.rmSync(kind.files(dir).owner);
        // Now its claim only, the record names a dead process.
        leave(kind, dir, { claimPid: holder.pid!, ownerPid: dead });
        assert.equal(await kind.tryOnce(dir), false, 'a live claim keeps the lock');
        assert.ok(fs.existsSync(kind.files(dir).lock));
        holder.kill('SIGKILL');
        await within(10_000, 'the holder to die', gone);
        assert.equal(await kind.tryOnce(dir), true, 'free once every claim and the record are dead');
      });
    } finally {
      if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    }
  });

  test(`${kind.name}: a fresh lock with neither claim nor record is left to go stale, not broken on a guess`, { timeout: 30_000 }, async () => {
    await withDir(async (dir) => {
      leave(kind, dir, { lock: true });
      assert.equal(await kind.tryOnce(dir), false);
      assert.ok(fs.existsSync(kind.files(dir).lock));
    });
  });
}

test('a claim in the older home-lock form (daemon.lock.claim-<pid>) counts', { timeout: 30_000 }, async () => {
  const holder = sleeper();
  try {
    await withDir(async (dir) => {
      fs.mkdirSync(path.join(dir, 'daemon.lock'));
      fs.writeFileSync(path.join(dir, `daemon.lock.claim-${holder.pid}`), JSON.stringify({ pid: holder.pid, start_ticks: processStartTicks(holder.pid!) }));
      const got = await acquireHomeLock(dir, path.join(dir, 'daemon.lock'), { pid: path.join(dir, 'daemon.pid'), owner: path.join(dir, 'daemon.json') }, { pid: process.pid, start_ticks: null });
      assert.equal(got.ok, false);
    });
  } finally {
    holder.kill('SIGKILL');
  }
});
