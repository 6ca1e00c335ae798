// The random-kill loop shared by the fault-injection test and scripts/soak.ts.
//
// A real daemon runs several tasks of many short shell steps; each step appends one line
// `<task>:<step>:<attempt>` to lines.txt in its workspace. The loop kills the daemon with
// SIGKILL at a random moment (sometimes while it is still starting and recovering), checks
// every checkpoint on disk, restarts it and checks that the old step processes are gone.
// At the end every task must be completed and the lines must show DESIGN §6's guarantee:
//   - a step seen finished in any checkpoint keeps that finished attempt and never runs again;
//   - a step seen running at a crash is re-attached by the next daemon and finishes as that
//     same attempt, or (when its process is gone without an exit status) runs again as a
//     later attempt; an attempt whose work finished while no daemon ran never runs again;
//   - no attempt runs twice, and the finished attempt ran exactly once;
//   - no step process outlives its daemon's recovery unless the new daemon re-attached to
//     it, and no daemon is left at the end.
import fs from 'node:fs';
import path from 'node:path';
import { TERMINAL_STATUSES } from '../../src/store/records.js';
import { readLogSync } from '../../src/store/task-log.js';
import { procStat } from '../../src/util/proc.js';
import {
  call,
  cleanup,
  killHard,
  makeSandbox,
  markerProcesses,
  orphanProcesses,
  pidAlive,
  readLines,
  readTaskFiles,
  sleep,
  spawnDaemonRun,
  startTheDaemon,
  stopTheDaemon,
  waitFor,
  writeLineTemplate,
  type Sandbox,
} from './harness.js';

export interface KillLoopOptions {
  /** How many times the daemon is killed (kills during startup count). */
  crashes: number;
  workspaces?: number;
  stepsPerTask?: number;
  /** Open (not yet completed) tasks kept in the home while the loop runs. */
  openTasks?: number;
  /** Range of the random delay between "the daemon answers" and the kill. */
  killDelayMs?: [number, number];
  /** Share of crashes that hit a daemon still starting (before it answers, often mid-recovery). */
  startupKillShare?: number;
  /** Bound on the final run to completion. */
  finishTimeoutMs?: number;
  log?: (msg: string) => void;
  /** Keep the temp home (for inspection). */
  keep?: boolean;
  /** Ends the loop early (the end-state checks still run on what was done). */
  signal?: AbortSignal;
}

export interface KillLoopStats {
  crashes: number;
  startup_crashes: number;
  tasks: number;
  steps_finished: number;
  corrupted_checkpoints: number;
  finished_steps_lost: number;
  finished_steps_rerun: number;
  duplicate_attempts: number;
  interrupted_steps_seen: number;
  interrupted_steps_rerun: number;
  /** Running at a crash, and finished by that same attempt: the next daemon re-attached to it (or recorded the result it left). */
  interrupted_steps_reattached: number;
  interrupted_steps_not_rerun: number;
  /** Running at a crash, its attempt finished its work (wrote its line), and it was still run again: must be 0 outside reboots. */
  finished_while_down_rerun: number;
  leftover_temp_files: number;
  orphans: number;
  /** Leftover step process groups recovery killed (from the daemons' logs). */
  leftover_groups_killed: number;
  /** Restart -> the daemon answers a ping (recovery is done by then), per restart. */
  recovery_ms: number[];
  /** Restart -> the first interrupted step starts its new attempt, per crash that interrupted one. */
  resume_ms: number[];
  problems: string[];
  home: string;
}

type Key = string; // `${task}:${step}`

export async function runKillLoop(opts: KillLoopOptions): Promise<KillLoopStats> {
  const nWs = opts.workspaces ?? 3;
  const steps = opts.stepsPerTask ?? 12;
  const openTarget = opts.openTasks ?? 4;
  const [dMin, dMax] = opts.killDelayMs ?? [40, 1200];
  const startupShare = opts.startupKillShare ?? 0.15;
  const log = opts.log ?? (() => undefined);
  const wsNames = Array.from({ length: nWs }, (_, i) => `w${i + 1}`);
  const sb = makeSandbox({ workspaces: wsNames, config: 'max_concurrent_tasks: 4\nstep_defaults:\n  kill_grace: 300ms\n' });
  // Mostly very short steps; every fifth one runs long enough to outlive its daemon, so
  // recovery has live process trees to kill.
  writeLineTemplate(sb, 'crashy', steps, { sleepSeconds: 0.03, longEvery: 5, longSleepSeconds: 0.9 });

  const stats: KillLoopStats = {
    crashes: 0,
    startup_crashes: 0,
    tasks: 0,
    steps_finished: 0,
    corrupted_checkpoints: 0,
    finished_steps_lost: 0,
    finished_steps_rerun: 0,
    duplicate_attempts: 0,
    interrupted_steps_seen: 0,
    interrupted_steps_rerun: 0,
    interrupted_steps_reattached: 0,
    interrupted_steps_not_rerun: 0,
    finished_while_down_rerun: 0,
    leftover_temp_files: 0,
    orphans: 0,
    leftover_groups_killed: 0,
    recovery_ms: [],
    resume_ms: [],
    problems: [],
    home: sb.home,
  };
  const problem = (msg: string) => {
    if (stats.problems.length < 50) stats.problems.push(msg);
    log(`PROBLEM: ${msg}`);
  };
  /** Steps seen finished at a crash: key -> the finished attempt. */
  const finished = new Map<Key, number>();
  /** Steps seen running at a crash: key -> the highest attempt seen running. */
  const interrupted = new Map<Key, number>();
  /** Per restart: when it began and which steps it should resume (for resume_ms). */
  const restarts: Array<{ at: number; resume: Array<{ ws: string; id: string; step: string; after: number }> }> = [];
  let pid: number | undefined;
  let rr = 0;
  let lastReported = 0;

  /** Reads every checkpoint right after a crash (nothing writes then) and records what it shows. */
  const inspect = (): Array<{ ws: string; id: string; step: string; after: number }> => {
    const resume: Array<{ ws: string; id: string; step: string; after: number }> = [];
    for (const tf of readTaskFiles(sb)) {
      const bak = path.join(tf.dir, 'task.json.bak');
      if (fs.existsSync(bak)) {
        try {
          JSON.parse(fs.readFileSync(bak, 'utf8'));
        } catch (err) {
          stats.corrupted_checkpoints++;
          problem(`${tf.id}: task.json.bak does not parse after crash ${stats.crashes}: ${(err as Error).message}`);
        }
      }
      if (!tf.task) {
        // A task directory made by createTask an instant before the kill may not have its first checkpoint yet.
        if (fs.existsSync(path.join(tf.dir, 'task.json')) || fs.existsSync(path.join(tf.dir, 'task.log'))) {
          stats.corrupted_checkpoints++;
          problem(`${tf.id}: task.json does not parse after crash ${stats.crashes}: ${tf.error}`);
        }
        continue;
      }
      for (const s of tf.task.steps) {
        const key = `${tf.id}:${s.name}`;
        const was = finished.get(key);
        if (s.status === 'completed') {
          const done = tf.task.step_results.filter((r) => r.step_name === s.name && r.status === 'completed');
          const attempt = done.at(-1)?.attempt ?? s.attempts;
          if (was !== undefined && was !== attempt) {
            stats.finished_steps_rerun++;
            problem(`${key} was finished at attempt ${was}, now at attempt ${attempt}`);
          }
          finished.set(key, attempt);
        } else if (was !== undefined) {
          stats.finished_steps_lost++;
          problem(`${key} was finished (attempt ${was}) and is now ${s.status} after crash ${stats.crashes}`);
        }
        if (s.status === 'running' && tf.task.status === 'running') {
          stats.interrupted_steps_seen++;
          interrupted.set(key, Math.max(interrupted.get(key) ?? 0, s.attempts));
          resume.push({ ws: tf.workspace, id: tf.id, step: s.name, after: s.attempts });
        }
      }
    }
    return resume;
  };

  const checkAfterRestart = async (daemonPid: number) => {
    // Recovery ran before the daemon answered: no step process of an earlier daemon may live on.
    // ... except the steps the new daemon re-attached to: they run on as the task records them.
    const live = () => {
      const groups = new Set<number>();
      for (const tf of readTaskFiles(sb)) for (const s of tf.task?.steps ?? []) if (s.status === 'running' && s.process) groups.add(s.process.pgid);
      return orphanProcesses(sb, daemonPid).filter((p) => !groups.has(pgidOf(p.pid)));
    };
    let orphans = live();
    if (orphans.length) {
      // A gate that never got "go" exits on its own as the pipe closes; give such a process a bounded moment.
      try {
        await waitFor('leftover step processes to go', () => live().length === 0, 3000, 20);
        orphans = [];
      } catch {
        orphans = live();
      }
    }
    if (orphans.length) {
      stats.orphans += orphans.length;
      problem(`after restart ${stats.crashes}: step processes of an earlier daemon still alive: ${orphans.map((p) => `${p.pid} ${p.args.slice(0, 80)}`).join('; ')}`);
      for (const p of orphans) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    // Temp files of dead writers are swept at start.
    for (const tf of readTaskFiles(sb)) {
      for (const dir of [tf.dir, path.join(tf.dir, 'artifacts')]) {
        let names: string[] = [];
        try {
          names = fs.readdirSync(dir);
        } catch {
          continue;
        }
        for (const n of names) {
          const m = /\.tmp-(\d+)-\d+$/.exec(n);
          if (m && Number(m[1]) !== daemonPid && !pidAlive(Number(m[1]))) {
            stats.leftover_temp_files++;
            problem(`after restart ${stats.crashes}: temp file of a dead writer left: ${path.join(dir, n)}`);
          }
        }
      }
    }
  };

  const restart = async (resume: Array<{ ws: string; id: string; step: string; after: number }>) => {
    const at = Date.now();
    restarts.push({ at, resume });
    pid = await startTheDaemon(sb, 30_000);
    stats.recovery_ms.push(Date.now() - at);
    await checkAfterRestart(pid);
  };

  const crash = async () => {
    if (pid !== undefined) await killHard(pid);
    stats.crashes++;
    pid = undefined;
    return inspect();
  };

  const topUp = async () => {
    const open = readTaskFiles(sb).filter((t) => t.task && !TERMINAL_STATUSES.has(t.task.status)).length;
    for (let i = open; i < openTarget; i++) {
      const ws = wsNames[rr++ % wsNames.length]!;
      await call(sb, 'task.start', { template: 'crashy', workspace: ws });
      stats.tasks++;
    }
  };

  try {
    pid = await startTheDaemon(sb, 30_000);
    for (const ws of wsNames) await call(sb, 'workspace.create', { name: ws, path: sb.workspaces[ws] });

    while (stats.crashes < opts.crashes && !opts.signal?.aborted) {
      await topUp();
      await sleep(dMin + Math.random() * (dMax - dMin));
      let resume = await crash();
      if (stats.crashes < opts.crashes && Math.random() < startupShare) {
        // Kill a daemon that is still starting: before it listens, often while it recovers.
        const child = spawnDaemonRun(sb);
        await sleep(Math.random() * 350);
        if (child.pid !== undefined) await killHard(child.pid);
        stats.crashes++;
        stats.startup_crashes++;
        resume = [...resume, ...inspect()];
      }
      await restart(resume);
      if (Math.floor(stats.crashes / 10) > Math.floor(lastReported / 10)) {
        lastReported = stats.crashes;
        log(`crash ${Math.floor(stats.crashes / 10) * 10}: ${stats.tasks} tasks, ${finished.size} finished steps seen, ${interrupted.size} interrupted`);
      }
    }

    // Let everything finish, then check the end state.
    await waitFor(
      'every task to complete',
      () => {
        const all = readTaskFiles(sb);
        const bad = all.find((t) => t.task && t.task.status !== 'completed' && TERMINAL_STATUSES.has(t.task.status));
        if (bad) throw new Error(`task ${bad.id} ended ${bad.task!.status}: ${bad.task!.error ?? ''}`);
        return all.every((t) => t.task?.status === 'completed');
      },
      opts.finishTimeoutMs ?? 60_000,
      100,
    ).catch((err: Error) => {
      const open = readTaskFiles(sb).filter((t) => t.task?.status !== 'completed');
      problem(`${err.message}; not completed: ${open.map((t) => `${t.id}=${t.task?.status ?? t.error}`).join(', ')}`);
    });
    await stopTheDaemon(sb, pid);
    if (pid !== undefined && pidAlive(pid)) problem(`the daemon (pid ${pid}) is still alive after daemon.stop`);
    pid = undefined;
    judge(sb, stats, finished, interrupted, problem);
    resumeTimes(sb, restarts, stats);
    stats.leftover_groups_killed = killedGroups(sb);
    const left = markerProcesses(sb);
    if (left.length) {
      stats.orphans += left.length;
      problem(`step processes alive at the end: ${left.map((p) => `${p.pid} ${p.args.slice(0, 80)}`).join('; ')}`);
    }
  } catch (err) {
    problem(`the loop itself failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    const extra = pid !== undefined ? [pid] : [];
    for (const msg of await cleanup(sb, { keep: opts.keep ?? stats.problems.length > 0, extraPids: extra })) problem(msg);
  }
  return stats;
}

/** The end-state checks over the final checkpoints and the lines the steps wrote. */
function judge(sb: Sandbox, stats: KillLoopStats, finished: Map<Key, number>, interrupted: Map<Key, number>, problem: (m: string) => void): void {
  const lines = readLines(sb);
  const final = new Map<Key, number>();
  for (const tf of readTaskFiles(sb)) {
    if (!tf.task) {
      stats.corrupted_checkpoints++;
      problem(`${tf.id}: final task.json does not parse: ${tf.error}`);
      continue;
    }
    if (tf.task.status !== 'completed') continue; // reported by the wait above
    for (const s of tf.task.steps) {
      const key = `${tf.id}:${s.name}`;
      const done = tf.task.step_results.filter((r) => r.step_name === s.name && r.status === 'completed');
      if (done.length !== 1 || s.status !== 'completed') {
        problem(`${key}: ${done.length} completed results, status ${s.status}`);
        continue;
      }
      const a = done[0]!.attempt;
      final.set(key, a);
      stats.steps_finished++;
      if (s.attempts !== a) problem(`${key}: finished at attempt ${a} but the step shows ${s.attempts} attempts`);
      const byAttempt = lines.get(key) ?? new Map<number, number>();
      for (const [attempt, n] of byAttempt) {
        if (n > 1) {
          stats.duplicate_attempts++;
          problem(`${key}: attempt ${attempt} ran ${n} times`);
        }
        if (attempt > a) {
          stats.finished_steps_rerun++;
          problem(`${key}: ran again (attempt ${attempt}) after it finished at attempt ${a}`);
        }
      }
      if (byAttempt.get(a) !== 1) {
        stats.finished_steps_lost++;
        problem(`${key}: its finished attempt ${a} wrote ${byAttempt.get(a) ?? 0} lines, not 1`);
      }
    }
  }
  for (const [key, a] of finished) {
    const f = final.get(key);
    if (f === undefined) continue; // the task did not complete: reported already
    if (f !== a) {
      stats.finished_steps_rerun++;
      problem(`${key}: seen finished at attempt ${a} at a crash, finished at attempt ${f} in the end`);
    }
  }
  for (const [key, a] of interrupted) {
    const f = final.get(key);
    if (f === undefined) continue;
    if (f === a) {
      stats.interrupted_steps_reattached++;
      continue;
    }
    if (f < a) {
      stats.interrupted_steps_not_rerun++;
      problem(`${key}: was running (attempt ${a}) at a crash but finished at attempt ${f}`);
      continue;
    }
    stats.interrupted_steps_rerun++;
    // Re-run is right only when the attempt's work never finished (a gate that never got "go",
    // a daemon stop): one whose line is written finished, and running it again is the defect
    // the re-attach removes.
    for (let x = a; x < f; x++) {
      if ((lines.get(key)?.get(x) ?? 0) > 0) {
        stats.finished_while_down_rerun++;
        problem(`${key}: attempt ${x} finished its work while no daemon ran, and the step was still run again (attempt ${f})`);
      }
    }
  }
}

/** Restart -> the first step_started of an interrupted step's new attempt, from the task logs. */
function resumeTimes(sb: Sandbox, restarts: Array<{ at: number; resume: Array<{ ws: string; id: string; step: string; after: number }> }>, stats: KillLoopStats): void {
  const logs = new Map<string, Array<{ step: string; attempt: number; time: number }>>();
  const startsOf = (ws: string, id: string) => {
    const k = `${ws}/${id}`;
    let v = logs.get(k);
    if (!v) {
      v = readLogSync(path.join(sb.home, 'workspaces', ws, 'tasks', id, 'task.log'), (r) => r.event === 'step_started').records.map((r) => ({
        step: String(r['step']),
        attempt: Number(r['attempt']),
        time: Date.parse(String(r.time)),
      }));
      logs.set(k, v);
    }
    return v;
  };
  restarts.forEach((r, i) => {
    const until = restarts[i + 1]?.at ?? Infinity;
    let first = Infinity;
    for (const s of r.resume) {
      for (const rec of startsOf(s.ws, s.id)) {
        if (rec.step === s.step && rec.attempt > s.after && rec.time >= r.at - 5 && rec.time < until) first = Math.min(first, rec.time);
      }
    }
    if (Number.isFinite(first)) stats.resume_ms.push(Math.max(0, first - r.at));
  });
}

/** Sums `killed_groups` over the recovery reports in logs/daemon.log. */
function killedGroups(sb: Sandbox): number {
  let n = 0;
  let text = '';
  try {
    text = fs.readFileSync(path.join(sb.home, 'logs', 'daemon.log'), 'utf8');
  } catch {
    return 0;
  }
  for (const line of text.split('\n')) {
    try {
      const rec = JSON.parse(line) as { msg?: string; recovery?: { killed_groups?: unknown } };
      if (rec.msg === 'daemon ready' && typeof rec.recovery?.killed_groups === 'number') n += rec.recovery.killed_groups;
    } catch {
      // a torn last line of a killed daemon
    }
  }
  return n;
}

function pgidOf(pid: number): number {
  return procStat(pid)?.pgrp ?? -1;
}
