// {{ inputs.name }} (and {{ task.id }}, {{ task.workspace }}) in prompts, messages and
// commands. In commands every value is single-quoted for /bin/sh, so no input can inject
// shell syntax; commands also get inputs as ATLAS_INPUT_<NAME> environment variables, the
// safest way to use them.
import type { TaskRecord } from '../store/records.js';

const REF = /\{\{\s*(inputs|task)\.([A-Za-z0-9_]+)\s*\}\}/g;

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function interpolate(text: string, task: Pick<TaskRecord, 'id' | 'workspace' | 'inputs'>, mode: 'text' | 'shell'): string {
  return text.replace(REF, (_m, scope: string, key: string) => {
    const value = scope === 'inputs' ? (task.inputs[key] ?? '') : key === 'id' ? task.id : key === 'workspace' ? task.workspace : '';
    return mode === 'shell' ? shellQuote(value) : value;
  });
}

export function inputEnvName(name: string): string {
  return `ATLAS_INPUT_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}
