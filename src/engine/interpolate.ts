// {{ inputs.name }} (and {{ task.id }}, {{ task.workspace }}, {{ review.reason }}: the newest
// reason a human step was rejected with) in prompts, messages and
// commands. In prompts and messages the value is put in as text. In commands the value
// itself never enters the command text: the reference becomes a quoted expansion of the
// environment variable that holds it (ATLAS_INPUT_<NAME>, ATLAS_TASK_ID, ATLAS_WORKSPACE),
// quoted to suit where it sits ("${V}" outside quotes, ${V} inside "...", '"${V}"' inside
// '...'). The shell never parses the result of an expansion, so no input can inject shell
// syntax wherever the template puts the reference: inside double quotes, in a heredoc or a
// $(...), where quoting the value itself would not hold. (A string that a second shell runs,
// as in sh -c '... {{ inputs.x }} ...', gets the value from the first shell and parses it
// again: there, write "$ATLAS_INPUT_X" so that the second shell expands it.)
import type { TaskRecord } from '../store/records.js';

const REF = /\{\{\s*(inputs|task|review)\.([A-Za-z0-9_]+)\s*\}\}/g;

type Interpolated = Pick<TaskRecord, 'id' | 'workspace' | 'inputs'> & Partial<Pick<TaskRecord, 'rejections'>>;

/** The newest rejection's reason ({{ review.reason }}, ATLAS_REJECT_REASON), or ''. */
export function lastRejectReason(task: Partial<Pick<TaskRecord, 'rejections'>>): string {
  return task.rejections?.at(-1)?.reason ?? '';
}

export function inputEnvName(name: string): string {
  return `ATLAS_INPUT_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** The variable that holds a reference's value in a step's environment, if any. */
function envNameOf(scope: string, key: string): string | undefined {
  if (scope === 'inputs') return inputEnvName(key);
  if (scope === 'review') return key === 'reason' ? 'ATLAS_REJECT_REASON' : undefined;
  return key === 'id' ? 'ATLAS_TASK_ID' : key === 'workspace' ? 'ATLAS_WORKSPACE' : undefined;
}

function valueOf(task: Interpolated, scope: string, key: string): string {
  if (scope === 'review') return key === 'reason' ? lastRejectReason(task) : '';
  return scope === 'inputs' ? (task.inputs[key] ?? '') : key === 'id' ? task.id : key === 'workspace' ? task.workspace : '';
}

type Quoting = 'bare' | 'single' | 'double';

function shellRef(scope: string, key: string, quoting: Quoting): string {
  const name = envNameOf(scope, key);
  if (name === undefined) return quoting === 'bare' ? "''" : '';
  switch (quoting) {
    case 'bare':
      return `"\${${name}}"`;
    case 'double':
      return `\${${name}}`;
    case 'single':
      return `'"\${${name}}"'`;
    default: {
      const never: never = quoting;
      return never;
    }
  }
}

/**
 * Replaces the references in `text`. With mode 'shell' the result is for /bin/sh and must
 * run with the step's environment (which holds every ATLAS_INPUT_* of the task).
 */
export function interpolate(text: string, task: Interpolated, mode: 'text' | 'shell'): string {
  if (mode === 'text') return text.replace(REF, (_m, scope: string, key: string) => valueOf(task, scope, key));
  // Track the quoting around each reference: outside quotes, in '...' or in "...", where a
  // $(...) or `...` opens a new unquoted context. A misjudged context only costs looks
  // (word splitting, stray quotes), never safety: an expansion is never parsed as syntax.
  const ref = new RegExp(REF.source, 'y');
  let quoting: Quoting = 'bare';
  const outer: Array<{ quoting: Quoting; close: string }> = [];
  let out = '';
  for (let i = 0; i < text.length; ) {
    ref.lastIndex = i;
    const m = ref.exec(text);
    if (m) {
      out += shellRef(m[1]!, m[2]!, quoting);
      i = ref.lastIndex;
      continue;
    }
    const c = text[i]!;
    if (quoting === 'single') {
      if (c === "'") quoting = 'bare';
    } else if (c === '\\') {
      out += text.slice(i, i + 2);
      i += 2;
      continue;
    } else if (c === '$' && text[i + 1] === '(') {
      outer.push({ quoting, close: ')' });
      quoting = 'bare';
      out += '$(';
      i += 2;
      continue;
    } else if (c === '`' && outer.at(-1)?.close !== '`') {
      outer.push({ quoting, close: '`' });
      quoting = 'bare';
    } else if (quoting === 'bare' && c === outer.at(-1)?.close) {
      quoting = outer.pop()!.quoting;
    } else if (c === '"') {
      quoting = quoting === 'double' ? 'bare' : 'double';
    } else if (c === "'" && quoting === 'bare') {
      quoting = 'single';
    }
    out += c;
    i++;
  }
  return out;
}
