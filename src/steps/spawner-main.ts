// The spawner: a small long-lived process that creates step processes for the daemon.
//
// Forking copies the parent's page tables, so a spawn from the daemon (large heap, many
// threads) costs it several milliseconds of its main thread, growing with its memory. This
// process stays small and does nothing else: the daemon sends it requests over the IPC
// channel of `fork()`, and it answers with the pid and start time, passes on the gate's "go"
// (and the command's standard input), and reports every exit with its code or signal.
//
// Step processes write their output to files and their exit status to a status file
// (see attempt-files.ts), so they outlive both this process and the daemon. When the daemon
// goes away the IPC channel closes and this process exits: the gates it still holds close
// with it, so a step that was never told "go" exits without running anything.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { processStartTicks } from '../util/proc.js';
import { GATE, type SpawnerReply, type SpawnerRequest } from './spawner-protocol.js';

const gates = new Map<number, ChildProcess>();

function send(reply: SpawnerReply): void {
  if (process.connected) process.send!(reply);
}

function onSpawn(req: Extract<SpawnerRequest, { t: 'spawn' }>): void {
  let out: number | undefined;
  let err: number | undefined;
  try {
    out = fs.openSync(req.out, 'a', 0o600);
    err = fs.openSync(req.err, 'a', 0o600);
  } catch (e) {
    if (out !== undefined) fs.closeSync(out);
    send({ t: 'spawned', id: req.id, error: (e as Error).message, code: (e as NodeJS.ErrnoException).code ?? null });
    return;
  }
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', GATE, 'atlas-step', req.command, req.status], { cwd: req.cwd, env: req.env, detached: true, stdio: ['pipe', out, err] });
  } catch (e) {
    fs.closeSync(out);
    fs.closeSync(err);
    send({ t: 'spawned', id: req.id, error: (e as Error).message, code: (e as NodeJS.ErrnoException).code ?? null });
    return;
  }
  fs.closeSync(out);
  fs.closeSync(err);
  child.once('error', (e) => {
    if (child.pid === undefined) send({ t: 'spawned', id: req.id, error: e.message, code: (e as NodeJS.ErrnoException).code ?? null });
  });
  child.once('spawn', () => {
    const pid = child.pid!;
    gates.set(pid, child);
    child.stdin!.on('error', () => undefined); // EPIPE when the command does not read its input
    send({ t: 'spawned', id: req.id, pid, start_ticks: processStartTicks(pid) });
  });
  child.once('exit', (code, signal) => {
    if (child.pid === undefined) return;
    gates.delete(child.pid);
    send({ t: 'exit', pid: child.pid, code, signal });
  });
}

process.on('message', (msg: SpawnerRequest) => {
  switch (msg.t) {
    case 'spawn':
      onSpawn(msg);
      break;
    case 'go': {
      const child = gates.get(msg.pid);
      child?.stdin?.end(msg.stdin === undefined ? 'go\n' : `go\n${msg.stdin}`);
      break;
    }
    case 'abort': {
      const child = gates.get(msg.pid);
      child?.stdin?.destroy();
      try {
        process.kill(-msg.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      break;
    }
  }
});

// The daemon went away: exit, closing the gates of steps that were never let run.
process.on('disconnect', () => process.exit(0));
send({ t: 'ready', pid: process.pid });
