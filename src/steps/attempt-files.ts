// The files of one running attempt, in the task's `run/` directory:
//   <step index>.<attempt>.out / .err      the command's stdout and stderr, written by the
//                                          process itself (so it needs no daemon to drain a pipe)
//   <step index>.<attempt>.<n>.status      written by the gate when command n of the step ends:
//                                          its exit status, then `times` output
// The daemon tails .out and .err into the log and the output artifact. They are removed once
// the attempt's result is checkpointed; until then they let a daemon that was not running
// when the step ended record its result and its output.
import fs from 'node:fs';
import path from 'node:path';

export interface AttemptFiles {
  /** The base, relative to the task directory (as recorded in StepProcess.run). */
  base: string;
  out: string;
  err: string;
  status(command: number): string;
  /** An ai step's memory (ATLAS_MEMORY_FILE) and what it adds to it (ATLAS_MEMORY_OUT). */
  memory: string;
  memoryOut: string;
}

export function attemptFiles(taskDir: string, stepIndex: number, attempt: number): AttemptFiles {
  const base = `run/${stepIndex}.${attempt}`;
  return filesAt(taskDir, base);
}

export function filesAt(taskDir: string, base: string): AttemptFiles {
  const abs = path.join(taskDir, base);
  return { base, out: `${abs}.out`, err: `${abs}.err`, status: (n) => `${abs}.${n}.status`, memory: `${abs}.memory.md`, memoryOut: `${abs}.memory-out.jsonl` };
}

export interface StatusRecord {
  code: number;
  /** CPU time of the command's reaped process tree (user + system), when `times` reported it. */
  cpu_ms: number | null;
}

/** Reads a status file; undefined when it is missing or not (yet) complete. */
export function readStatus(file: string): StatusRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  if (!/^\d+$/.test(lines[0] ?? '')) return undefined;
  return { code: Number(lines[0]), cpu_ms: parseTimes(lines[2]) };
}

/** `times`' second line: the children's user and system time, `0m0.010000s 0m0.020000s`. */
function parseTimes(line: string | undefined): number | null {
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(line?.trim() ?? '');
  if (!m) return null;
  const sec = Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  return Math.round(sec * 1000);
}

export function ensureRunDir(taskDir: string): void {
  fs.mkdirSync(path.join(taskDir, 'run'), { recursive: true, mode: 0o700 });
}

/** Removes an attempt's files (best effort: a leftover is swept with the next attempt's). */
export function removeAttemptFiles(taskDir: string, base: string): void {
  const dir = path.join(taskDir, path.dirname(base));
  const prefix = `${path.basename(base)}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(prefix)) fs.rmSync(path.join(dir, n), { force: true });
}
