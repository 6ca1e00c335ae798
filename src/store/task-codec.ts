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
