// An uncaught exception or an unhandled rejection in the daemon: it logs the error and exits
// non-zero (70) at once, so a supervisor restarts it and recovery puts every task right;
// limping on in an unknown state once left a task `running` with nothing running it.
// The daemon runs in a child process that throws (or rejects) once it is ready.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EXIT_INTERNAL_ERROR } from '../../src/daemon/daemon.js';
import { waitFor } from '../helpers/daemon.js';

const daemonModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/daemon/daemon.js');

async function crashWith(kind: 'throw' | 'reject'): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-fatal-'));
  const fault = kind === 'throw' ? `setTimeout(() => { throw new Error('boom-${kind}'); }, 10);` : `setTimeout(() => { void Promise.reject(new Error('boom-${kind}')); }, 10);`;
  const code = `const { runDaemon } = await import(${JSON.stringify(daemonModule)}); await runDaemon({ home: ${JSON.stringify(home)}, graceMs: 1000 }); ${fault}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let exit: number | null | undefined;
  child.on('exit', (c) => (exit = c));
  try {
    await waitFor(`the daemon to exit after an ${kind === 'throw' ? 'uncaught exception' : 'unhandled rejection'}`, () => exit !== undefined, 15_000);
    assert.equal(exit, EXIT_INTERNAL_ERROR, stderr);
    const log = fs.readFileSync(path.join(home, 'logs', 'daemon.log'), 'utf8');
    assert.match(log, new RegExp(`"level":60.*boom-${kind}`), 'the error is in daemon.log, at level fatal');
    assert.match(stderr, new RegExp(`boom-${kind}`));
  } finally {
    if (exit === undefined) child.kill('SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
  }
}

test('an uncaught exception in the daemon is logged and the daemon exits non-zero', { timeout: 30_000 }, () => crashWith('throw'));

test('an unhandled rejection in the daemon is logged and the daemon exits non-zero', { timeout: 30_000 }, () => crashWith('reject'));
