// Names of workspaces, templates, steps and artifacts (DESIGN §2). Every name is checked
// here before any path is built from it, so no name can escape the home.
import { AtlasError } from '../errors.js';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const TASK_ID_PATTERN = /^task-\d{8}-\d{6}(?:-\d{1,6})?$/;

export type NameKind = 'workspace' | 'template' | 'step' | 'artifact' | 'input';

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name) && name !== '.' && name !== '..' && !name.includes('..');
}

export function assertName(kind: NameKind, name: unknown): string {
  if (!isValidName(name)) {
    throw new AtlasError(
      'invalid_name',
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
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
    throw new AtlasError('invalid_name', `invalid task id ${JSON.stringify(id)}: task ids look like task-20261121-101500`, {
      details: { kind: 'task', name: String(id) },
    });
  }
  return id;
}
