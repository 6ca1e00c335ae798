// Decoding task.json: parse, migrate older schema versions, and refuse files written by a
// newer atlas (never rewriting them). A file that does not parse or lacks the fields other
// programs rely on is reported as corrupt, naming the file.
import { AtlasError } from '../errors.js';
import { SCHEMA_VERSION, isTaskStatus, type TaskRecord } from './records.js';

type Migration = (raw: Record<string, unknown>) => Record<string, unknown>;

/** Migrations from an older major.minor to the next; "1.0" is the first published version. */
const MIGRATIONS: Record<string, { to: string; migrate: Migration }> = {};

function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}

export function decodeTask(text: string, file: string): TaskRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AtlasError('corrupt', `${file} is not valid JSON (${(err as Error).message}); run 'atlas doctor --repair'`, {
      details: { file },
      cause: err,
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new AtlasError('corrupt', `${file} does not hold a task object; run 'atlas doctor --repair'`, { details: { file } });
  }
  let rec = raw as Record<string, unknown>;
  const found = rec['schema_version'];
  if (typeof found !== 'string' || !/^\d+\.\d+$/.test(found)) throw corrupt(file, 'schema_version');
  let version: string = found;
  if (compareVersions(version, SCHEMA_VERSION) > 0) {
    throw new AtlasError(
      'unsupported_schema',
      `${file} was written by a newer atlas (schema ${version}; this atlas reads up to ${SCHEMA_VERSION}): upgrade atlas to read it`,
      { details: { file, schema_version: version } },
    );
  }
  while (version !== SCHEMA_VERSION) {
    const step: { to: string; migrate: Migration } | undefined = MIGRATIONS[version];
    if (!step) throw new AtlasError('unsupported_schema', `${file}: no migration from schema ${version}`, { details: { file } });
    rec = step.migrate(rec);
    version = step.to;
    rec['schema_version'] = version;
  }
  checkShape(rec, file);
  return rec as unknown as TaskRecord;
}

function corrupt(file: string, field: string): AtlasError {
  return new AtlasError('corrupt', `${file} is missing or has a bad '${field}'; run 'atlas doctor --repair'`, { details: { file, field } });
}

function checkShape(rec: Record<string, unknown>, file: string): void {
  for (const key of ['id', 'workspace', 'template', 'created_at', 'updated_at'] as const) {
    if (typeof rec[key] !== 'string') throw corrupt(file, key);
  }
  if (!isTaskStatus(rec['status'])) throw corrupt(file, 'status');
  for (const key of ['revision', 'current_step', 'priority'] as const) {
    if (typeof rec[key] !== 'number' || !Number.isFinite(rec[key])) throw corrupt(file, key);
  }
  for (const key of ['steps', 'step_results', 'transitions'] as const) {
    if (!Array.isArray(rec[key])) throw corrupt(file, key);
  }
  if (typeof rec['inputs'] !== 'object' || rec['inputs'] === null) throw corrupt(file, 'inputs');
}

/** Compact JSON: a checkpoint is written after every step, and pretty-printing a long task costs
 *  as much CPU as the rest of the step. `atlas show --json` prints it readably. */
export function encodeTask(task: TaskRecord): string {
  return JSON.stringify(task) + '\n';
}

// ---- checkpoint encoding with reuse ---------------------------------------------------
//
// A long task's task.json is mostly its finished steps and results, which do not change
// from one checkpoint to the next; encoding all of it again made each step cost more the
// longer the task (issue 17). So the elements of steps[], step_results[] and transitions[]
// keep their encoded bytes between checkpoints (keyed by the element object), and a
// checkpoint encodes only what changed, then hands the pieces to one writev. A cached piece
// is reused only after a check that the element still equals, field for field and in key
// order, the JSON it was encoded from (steps are changed in place while they run, and a
// resume resets them), so the bytes are always exactly JSON.stringify(task) + '\n'.

const CACHED_ARRAYS = new Set(['steps', 'step_results', 'transitions']);
/** Per element: `,` + its JSON (the comma dropped for a first element), and the JSON parsed back. */
const pieces = new WeakMap<object, { bytes: Buffer; json: unknown }>();

/** task.json as buffers to write one after another: the same bytes as encodeTask(task). */
export function encodeTaskPieces(task: TaskRecord): Buffer[] {
  const out: Buffer[] = [];
  let text = '{';
  let first = true;
  for (const [key, value] of Object.entries(task)) {
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    text += `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (!CACHED_ARRAYS.has(key) || !Array.isArray(value)) {
      text += JSON.stringify(value) ?? 'null';
      continue;
    }
    text += '[';
    for (let i = 0; i < value.length; i++) {
      const el: unknown = value[i];
      if (typeof el !== 'object' || el === null) {
        text += (i > 0 ? ',' : '') + (JSON.stringify(el) ?? 'null');
        continue;
      }
      let piece = pieces.get(el);
      if (!piece || !sameJson(el, piece.json)) {
        const encoded = JSON.stringify(el) ?? 'null';
        piece = { bytes: Buffer.from(`,${encoded}`, 'utf8'), json: JSON.parse(encoded) };
        pieces.set(el, piece);
      }
      out.push(Buffer.from(text, 'utf8'));
      text = '';
      out.push(i > 0 ? piece.bytes : piece.bytes.subarray(1));
    }
    text += ']';
  }
  out.push(Buffer.from(`${text}}\n`, 'utf8'));
  return out.filter((b) => b.length > 0);
}

/** True when `value` encodes to exactly the JSON that parsed into `json` (same keys in the same order). */
function sameJson(value: unknown, json: unknown): boolean {
  if (value === json) return typeof value !== 'number' || Number.isFinite(value);
  if (typeof value !== 'object' || value === null || typeof json !== 'object' || json === null) return false;
  if (Array.isArray(value)) {
    if (!Array.isArray(json) || value.length !== json.length) return false;
    for (let i = 0; i < value.length; i++) if (!sameJson(value[i], json[i]) && !(value[i] === undefined && json[i] === null)) return false;
    return true;
  }
  if (Array.isArray(json) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const keys = Object.keys(json);
  let i = 0;
  for (const k in value) {
    if (!Object.hasOwn(value, k)) return false;
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (keys[i] !== k || !sameJson(v, (json as Record<string, unknown>)[k])) return false;
    i++;
  }
  return i === keys.length;
}
