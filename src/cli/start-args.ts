// Parsing `atlas start`'s request from its arguments: inputs (-i key=value, key=@file), the
// caller's environment (--env, --env-clear), --after and --label. A bad value exits with a
// usage error naming it.
import fs from 'node:fs';
import { parseLabelArgs } from '../engine/labels.js';
import { EXIT } from './output.js';

export function parseInputs(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (Array.isArray(list) ? list : list === undefined ? [] : [list]) as unknown[]) {
    const s = String(item);
    const eq = s.indexOf('=');
    if (eq <= 0) {
      process.stderr.write(`atlas: -i expects key=value, got ${JSON.stringify(s)}\n`);
      process.exit(EXIT.USAGE);
    }
    out[s.slice(0, eq)] = inputValue(s.slice(0, eq), s.slice(eq + 1));
  }
  return out;
}

/** `-i name=@path` reads the value from a file (`-` is stdin); `@@` stands for a literal `@`. */
function inputValue(name: string, raw: string): string {
  if (raw.startsWith('@@')) return raw.slice(1);
  if (!raw.startsWith('@')) return raw;
  const file = raw.slice(1);
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    process.stderr.write(`atlas: -i ${name}=@${file}: cannot read ${file === '-' ? 'stdin' : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    process.exit(EXIT.USAGE);
  }
}

/**
 * The environment the task's steps start from: this shell's (captured now and kept with the
 * task), or with --env-clear only the variables named by --env KEY; --env KEY=VALUE sets one.
 */
export function callerEnvironment(list: unknown, clear: boolean, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  if (!clear) for (const [k, v] of Object.entries(from)) if (v !== undefined) env[k] = v;
  for (const item of (Array.isArray(list) ? list : list === undefined ? [] : [list]) as unknown[]) {
    const s = String(item);
    const eq = s.indexOf('=');
    if (eq === 0 || s === '') {
      process.stderr.write(`atlas: --env expects KEY or KEY=VALUE, got ${JSON.stringify(s)}\n`);
      process.exit(EXIT.USAGE);
    }
    if (eq > 0) env[s.slice(0, eq)] = s.slice(eq + 1);
    else if (from[s] !== undefined) env[s] = from[s]!;
    else {
      process.stderr.write(`atlas: --env ${s}: ${s} is not set in this shell\n`);
      process.exit(EXIT.USAGE);
    }
  }
  return env;
}

/** --after and -l for task.start. */
export function startExtras(args: Record<string, unknown>): { after?: string[]; labels?: Record<string, string> } {
  const after = ((args['after'] as string[] | undefined) ?? []).flatMap((a) => String(a).split(',')).map((a) => a.trim()).filter(Boolean);
  const labels = ((args['label'] as string[] | undefined) ?? []).map(String);
  let parsed: Record<string, string> = {};
  try {
    parsed = parseLabelArgs(labels);
  } catch (err) {
    process.stderr.write(`atlas: ${(err as Error).message}\n`);
    process.exit(EXIT.USAGE);
  }
  return { ...(after.length ? { after } : {}), ...(labels.length ? { labels: parsed } : {}) };
}
