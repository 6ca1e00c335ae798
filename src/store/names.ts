// Names of workspaces, templates, steps and artifacts (DESIGN §2). Every name is checked
// here before any path is built from it, so no name can escape the home.
import { AtlasError } from '../errors.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const TASK_ID_PATTERN = /^task-\d{8}-\d{6}(?:-\d{1,6})?$/;

/** The name rule, as every message about a bad name states it. */
export const NAME_RULE = "use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit";
export const TASK_ID_RULE = 'task ids look like task-20261121-101500';

/** A name as a message quotes it: a very long one is cut, with its length. */
export function quoteName(name: unknown): string {
  const s = typeof name === 'string' ? name : String(name);
  return s.length > 80 ? `${JSON.stringify(s.slice(0, 40))}... (${s.length} characters)` : JSON.stringify(s);
}

export type NameKind = 'workspace' | 'template' | 'step' | 'artifact' | 'input' | 'schedule';

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name) && name !== '.' && name !== '..' && !name.includes('..');
}

export function assertName(kind: NameKind, name: unknown): string {
  if (!isValidName(name)) {
    throw new AtlasError(
      'invalid_name',
      `invalid ${kind} name ${quoteName(name)}: ${NAME_RULE}`,
      { details: { kind, name: typeof name === 'string' ? name : String(name) } },
    );
  }
  return name;
}

export function isValidTaskId(id: unknown): id is string {
  return typeof id === 'string' && TASK_ID_PATTERN.test(id);
}

export function assertTaskId(id: unknown): string {
  if (!isValidTaskId(id)) {
    throw new AtlasError('invalid_name', `invalid task id ${quoteName(id)}: ${TASK_ID_RULE}`, {
      details: { kind: 'task', name: String(id) },
    });
  }
  return id;
}
