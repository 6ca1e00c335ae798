// Workspace memory (DESIGN §14): short entries (decisions, notes, patterns) kept per
// workspace and given to the `ai` steps of its tasks. This file holds the record types, the
// store contract and the filesystem backend; src/store/pg/pg-memory.ts is the PostgreSQL one.
//
// The filesystem backend keeps one journal per workspace, workspaces/<ws>/memory.jsonl: one
// JSON line per change (`add` with the whole entry, `remove` with an id), appended and
// fsynced before the call returns, never rewritten. A kill -9 can at worst tear the last
// line; a reader skips a line that does not parse, and the next append starts on a fresh
// line, so nothing before it is lost. Ids are numbers, one more than the highest ever used in
// the journal (a removed id is never reused). The daemon is the only writer of a home (it
// holds the home lock), and its appends to one journal go one at a time.
import fsp from 'node:fs/promises';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { FILE_MODE, ensureDir, fsyncDir } from './atomic.js';
import type { HomePaths } from './paths.js';

export const MEMORY_KINDS = ['decision', 'note', 'pattern'] as const;
export type MemoryKind = (typeof MEMORY_KINDS)[number];

export interface MemoryEntry {
  id: string;
  workspace: string;
  kind: MemoryKind;
  text: string;
  /** Who added it: `cli`, or the id of the task whose ai step wrote it. */
  source: string;
  created_at: string;
}

export interface NewMemoryEntry {
  kind: MemoryKind;
  text: string;
  source: string;
  /** An idempotency key: a second add under the same key returns the first entry instead of
   *  adding one (an ai step's entries are read again when a crash cut off its checkpoint). */
  key?: string;
}

/** One workspace's memory, in whatever store holds its tasks. */
export interface StoreMemory {
  add(workspace: string, entry: NewMemoryEntry): Promise<MemoryEntry>;
  /** Entries oldest first. */
  list(workspace: string): Promise<MemoryEntry[]>;
  /** Removes one entry and returns it; `not_found` when the workspace has no such entry. */
  remove(workspace: string, id: string): Promise<MemoryEntry>;
}

export function memoryNotFound(workspace: string, id: string): AtlasError {
  return new AtlasError('not_found', `workspace ${workspace} has no memory entry ${id}; 'atlas memory list -w ${workspace}' lists them`, { details: { workspace, id } });
}

type JournalLine =
  | ({ op: 'add'; key?: string } & Omit<MemoryEntry, 'workspace'>)
  | { op: 'remove'; id: string; at: string };

interface Journal {
  entries: Map<string, MemoryEntry>;
  keys: Map<string, string>;
  maxId: number;
  /** The file does not end with a newline (a torn last line). */
  torn: boolean;
  size: number;
}

/** Appends to one journal go one at a time, across every FsMemory of the process. */
const chains = new Map<string, Promise<unknown>>();

function serial<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const next = (chains.get(file) ?? Promise.resolve()).then(fn, fn);
  const settled = next.catch(() => undefined);
  chains.set(file, settled);
  void settled.then(() => {
    if (chains.get(file) === settled) chains.delete(file);
  });
  return next;
}

export class FsMemory implements StoreMemory {
  constructor(private readonly paths: HomePaths) {}

  private file(ws: string): string {
    return this.paths.memoryFile(ws);
  }

  async list(ws: string): Promise<MemoryEntry[]> {
    const j = await this.read(ws);
    return [...j.entries.values()].sort((a, b) => Number(a.id) - Number(b.id));
  }

  add(ws: string, entry: NewMemoryEntry): Promise<MemoryEntry> {
    const file = this.file(ws);
    return serial(file, async () => {
      const j = await this.read(ws);
      const known = entry.key !== undefined ? j.keys.get(entry.key) : undefined;
      if (known !== undefined) {
        const e = j.entries.get(known);
        if (e) return e;
      }
      const e: MemoryEntry = { id: String(j.maxId + 1), workspace: ws, kind: entry.kind, text: entry.text, source: entry.source, created_at: new Date().toISOString() };
      const { workspace: _ws, ...rest } = e;
      await this.append(ws, j, { op: 'add', ...rest, ...(entry.key !== undefined ? { key: entry.key } : {}) });
      return e;
    });
  }

  remove(ws: string, id: string): Promise<MemoryEntry> {
    const file = this.file(ws);
    return serial(file, async () => {
      const j = await this.read(ws);
      const e = j.entries.get(id);
      if (!e) throw memoryNotFound(ws, id);
      await this.append(ws, j, { op: 'remove', id, at: new Date().toISOString() });
      return e;
    });
  }

  private async read(ws: string): Promise<Journal> {
    const file = this.file(ws);
    const j: Journal = { entries: new Map(), keys: new Map(), maxId: 0, torn: false, size: 0 };
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return j;
      throw storageError('read', file, err);
    }
    j.size = Buffer.byteLength(text);
    j.torn = text.length > 0 && !text.endsWith('\n');
    for (const line of text.split('\n')) {
      const rec = parseLine(line);
      if (!rec) continue;
      if (rec.op === 'add') {
        const { op: _op, key, ...e } = rec;
        j.entries.set(e.id, { ...e, workspace: ws });
        if (key !== undefined) j.keys.set(key, e.id);
        j.maxId = Math.max(j.maxId, Number(e.id));
      } else {
        j.entries.delete(rec.id);
        j.maxId = Math.max(j.maxId, Number(rec.id));
      }
    }
    return j;
  }

  /** One line, on a line of its own, durable when this returns. */
  private async append(ws: string, j: Journal, line: JournalLine): Promise<void> {
    const file = this.file(ws);
    await ensureDir(this.paths.workspaceDir(ws));
    const data = `${j.torn ? '\n' : ''}${JSON.stringify(line)}\n`;
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(file, 'a', FILE_MODE);
      await fh.write(data);
      await fh.sync();
    } catch (err) {
      throw storageError('append to', file, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
    if (j.size === 0) await fsyncDir(this.paths.workspaceDir(ws));
  }
}

function parseLine(line: string): JournalLine | undefined {
  if (!line.trim()) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined; // a torn last line
  }
  if (!v || typeof v !== 'object') return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r['id'] !== 'string' || !/^\d{1,15}$/.test(r['id'])) return undefined;
  if (r['op'] === 'remove') return { op: 'remove', id: r['id'], at: String(r['at'] ?? '') };
  if (r['op'] !== 'add' || typeof r['text'] !== 'string' || !MEMORY_KINDS.includes(r['kind'] as MemoryKind)) return undefined;
  return {
    op: 'add',
    id: r['id'],
    kind: r['kind'] as MemoryKind,
    text: r['text'],
    source: typeof r['source'] === 'string' ? r['source'] : '',
    created_at: typeof r['created_at'] === 'string' ? r['created_at'] : '',
    ...(typeof r['key'] === 'string' ? { key: r['key'] } : {}),
  };
}
