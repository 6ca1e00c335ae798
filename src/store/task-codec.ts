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
// order, a snapshot of what it was encoded from (steps are changed in place while they run,
// and a resume resets them), so the bytes are always exactly JSON.stringify(task) + '\n'.
//
// What is left per element is that check, so it is kept cheap: a snapshot is compiled once
// (keys and values in arrays, no allocation when checking), and a full run of CHUNK elements
// found unchanged is joined into one buffer, reused until one of them changes, so a 1,000-step
// task is a few dozen pieces for writev rather than thousands, and the run that holds the
// running step is not copied again at every checkpoint.

const CACHED_ARRAYS = new Set(['steps', 'step_results', 'transitions']);
const CHUNK = 64;

/** What an object or array held when it was encoded: primitives as they were, nested values compiled. */
class ObjectSnap {
  constructor(
    readonly keys: string[],
    readonly values: unknown[],
  ) {}
}
class ArraySnap {
  constructor(readonly items: unknown[]) {}
}

/** Compiles parsed JSON (the encoding of an element read back) into a snapshot. */
function compile(json: unknown): unknown {
  if (typeof json !== 'object' || json === null) return json;
  if (Array.isArray(json)) return new ArraySnap(json.map(compile));
  const keys = Object.keys(json);
  return new ObjectSnap(keys, keys.map((k) => compile((json as Record<string, unknown>)[k])));
}

/** True when `value` encodes to exactly the JSON the snapshot was compiled from. */
function matches(value: unknown, snap: unknown): boolean {
  if (typeof value !== 'object' || value === null) {
    // JSON.stringify writes a non-finite number as null, so such a value never matches
    // (it is encoded again, which is always right).
    return value === snap && (typeof value !== 'number' || Number.isFinite(value));
  }
  if (Array.isArray(value)) {
    if (!(snap instanceof ArraySnap) || value.length !== snap.items.length) return false;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol' ? snap.items[i] !== null : !matches(v, snap.items[i])) return false;
    }
    return true;
  }
  if (!(snap instanceof ObjectSnap) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const { keys, values } = snap;
  let i = 0;
  for (const k in value) {
    if (!Object.hasOwn(value, k)) return false;
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (keys[i] !== k || !matches(v, values[i])) return false;
    i++;
  }
  return i === keys.length;
}

interface Piece {
  /** `,` + the element's JSON. */
  bytes: Buffer;
  snap: unknown;
}
/** Per element: its encoding and the snapshot it was encoded from. */
const pieces = new WeakMap<object, Piece>();

/** Per array: joined buffers of runs of CHUNK elements, with the pieces they were joined from. */
interface Chunk {
  parts: Piece[];
  /** The parts joined: made once a full run is found unchanged, so a run that changes at every
   *  checkpoint (the one holding the running step) is not copied again each time. */
  bytes: Buffer | undefined;
}
const chunks = new WeakMap<unknown[], Chunk[]>();

/** The element's piece: the cached one when the element still matches it, else a new one. */
function pieceOf(el: unknown): Piece {
  if (typeof el !== 'object' || el === null) return { bytes: Buffer.from(`,${JSON.stringify(el) ?? 'null'}`, 'utf8'), snap: undefined };
  const cached = pieces.get(el);
  if (cached && matches(el, cached.snap)) return cached;
  const encoded = JSON.stringify(el) ?? 'null';
  const piece = { bytes: Buffer.from(`,${encoded}`, 'utf8'), snap: compile(JSON.parse(encoded)) };
  pieces.set(el, piece);
  return piece;
}

/** The elements of `value` (a JSON array's inside, no brackets) as buffers, chunk by chunk. */
function encodeElements(value: unknown[], out: Buffer[]): void {
  const previous = chunks.get(value);
  const next: Chunk[] = [];
  for (let start = 0, c = 0; start < value.length; start += CHUNK, c++) {
    const end = Math.min(value.length, start + CHUNK);
    const old = previous?.[c];
    // The pieces are gathered only from the first one that differs from the old chunk's.
    let parts: Piece[] | null = null;
    for (let i = start; i < end; i++) {
      const piece = pieceOf(value[i]);
      if (parts === null) {
        if (old !== undefined && old.parts[i - start] === piece) continue;
        parts = old === undefined ? [] : old.parts.slice(0, i - start);
      }
      parts.push(piece);
    }
    if (parts === null && old!.parts.length !== end - start) parts = old!.parts.slice(0, end - start);
    let chunk: Chunk;
    if (parts === null) {
      chunk = old!;
      if (chunk.bytes === undefined && chunk.parts.length === CHUNK) chunk.bytes = Buffer.concat(chunk.parts.map((p) => p.bytes));
    } else {
      chunk = { parts, bytes: undefined };
    }
    next.push(chunk);
    // The first element of the array carries no leading comma.
    if (chunk.bytes !== undefined) out.push(start === 0 ? chunk.bytes.subarray(1) : chunk.bytes);
    else for (let i = 0; i < chunk.parts.length; i++) out.push(start === 0 && i === 0 ? chunk.parts[i]!.bytes.subarray(1) : chunk.parts[i]!.bytes);
  }
  chunks.set(value, next);
}

/** task.json as buffers to write one after another: the same bytes as encodeTask(task). */
export function encodeTaskPieces(task: TaskRecord): Buffer[] {
  const out: Buffer[] = [];
  let text = '{';
  let first = true;
  for (const [key, value] of Object.entries(task)) {
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    text += `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (!CACHED_ARRAYS.has(key) || !Array.isArray(value) || value.length === 0) {
      text += JSON.stringify(value) ?? 'null';
      continue;
    }
    out.push(Buffer.from(`${text}[`, 'utf8'));
    encodeElements(value, out);
    text = ']';
  }
  out.push(Buffer.from(`${text}}\n`, 'utf8'));
  return out;
}
