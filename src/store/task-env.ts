// A task's captured environment (issue 18 item 2): the environment of the `atlas start`
// caller, narrowed as asked, kept beside task.json in `env.json` (mode 0600; it may hold
// tokens, so it never enters task.json, the log or `show`). Every attempt of every step of
// the task starts from it, after a crash and a restart too, so what a step sees does not
// depend on which command happened to start the daemon.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { writeFileDurable } from './atomic.js';

export const TASK_ENV_FILE = 'env.json';

/** Variables never taken from the caller: atlas sets them itself for each step. */
export function isReservedEnvName(name: string): boolean {
  return name.startsWith('ATLAS_INPUT_') || name === 'ATLAS_HOME' || name === 'ATLAS_TASK_ID' || name === 'ATLAS_WORKSPACE' || name === 'ATLAS_STEP' || name === 'ATLAS_ATTEMPT' || name === 'ATLAS_REJECT_REASON';
}

/** Checks a caller's environment and drops what atlas sets itself. */
export function cleanEnvironment(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k === '' || k.includes('=') || k.includes('\0')) throw new AtlasError('invalid_input', `environment variable name ${JSON.stringify(k)} is not valid`);
    if (typeof v !== 'string' || v.includes('\0')) throw new AtlasError('invalid_input', `environment variable ${k} must be a string without NUL bytes`);
    if (!isReservedEnvName(k)) out[k] = v;
  }
  return out;
}

export function taskEnvPath(taskDir: string): string {
  return path.join(taskDir, TASK_ENV_FILE);
}

/** Writes the file durably (the caller syncs the directory). */
export async function writeTaskEnv(taskDir: string, env: Record<string, string>): Promise<void> {
  await writeFileDurable(taskEnvPath(taskDir), JSON.stringify({ captured_at: new Date().toISOString(), env }), { skipDirSync: true });
}

/** The captured environment, or undefined for a task that has none (started by a client that sent none). */
export async function readTaskEnv(taskDir: string): Promise<Record<string, string> | undefined> {
  const file = taskEnvPath(taskDir);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw storageError('read', file, err);
  }
  try {
    const parsed = JSON.parse(text) as { env?: unknown };
    if (parsed.env && typeof parsed.env === 'object') return parsed.env as Record<string, string>;
  } catch {
    // fall through
  }
  throw new AtlasError('corrupt', `${file} is not a valid environment file`, { details: { file } });
}
