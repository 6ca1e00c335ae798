// Task labels (DESIGN §13): `-l key=value` on start, stored as `labels` in task.json and
// filterable in `atlas list`. Keys are short names (letters, digits, `.`, `_`, `-`, `/`),
// values are single-line text; both are checked once, here, before any file is touched.
import { AtlasError } from '../errors.js';

export const MAX_LABELS = 32;
export const MAX_LABEL_VALUE = 256;
const KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/;

export function checkLabelKey(key: string): string {
  if (!KEY.test(key)) {
    throw new AtlasError('invalid_input', `label key ${JSON.stringify(key)} is not valid: use 1-64 letters, digits, '.', '_', '-' or '/', starting with a letter or digit`, { details: { label: key } });
  }
  return key;
}

export function checkLabelValue(key: string, value: string): string {
  if (typeof value !== 'string' || value.length > MAX_LABEL_VALUE || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new AtlasError('invalid_input', `label ${key}: the value must be one line of at most ${MAX_LABEL_VALUE} characters`, { details: { label: key } });
  }
  return value;
}

/** Checks a whole label set; returns it (a fresh object) or undefined when empty. */
export function checkLabels(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!labels) return undefined;
  const entries = Object.entries(labels);
  if (entries.length === 0) return undefined;
  if (entries.length > MAX_LABELS) throw new AtlasError('invalid_input', `a task may carry at most ${MAX_LABELS} labels (got ${entries.length})`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) out[checkLabelKey(k)] = checkLabelValue(k, v);
  return out;
}

/** Parses `key=value` items as given on a command line. */
export function parseLabelArgs(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new AtlasError('invalid_input', `-l expects key=value, got ${JSON.stringify(item)}`);
    const key = checkLabelKey(item.slice(0, eq));
    out[key] = checkLabelValue(key, item.slice(eq + 1));
  }
  return out;
}
