// Workspace memory (DESIGN §14) above the store: the checks every entry passes (whoever adds
// it: the CLI or an ai step), search, and what an ai step is given.
//
// An ai step is given the workspace's entries newest first, as many whole entries as fit in
// `memory.max_bytes` (config.yaml): as `{{ memory }}` in its prompt and as the file named by
// ATLAS_MEMORY_FILE. It may add entries by writing JSON lines ({"text": ..., "kind": ...})
// to the file named by ATLAS_MEMORY_OUT; they are read once the step has succeeded, each
// checked like a CLI entry, and stored with the task id as their source. A line that fails a
// check is reported in the step's output and skipped; the step still succeeds.
import fs from 'node:fs';
import { AtlasError } from '../errors.js';
import { MEMORY_KINDS, type MemoryEntry, type MemoryKind, type NewMemoryEntry } from '../store/memory.js';
import { assertName } from '../store/names.js';
import type { Store } from '../store/store.js';

/** The largest entry, in bytes of UTF-8. */
export const MEMORY_ENTRY_MAX_BYTES = 8 * 1024;
/** How much of an ATLAS_MEMORY_OUT file is read. */
const OUT_MAX_BYTES = 1024 * 1024;

/** One task's view of its workspace's memory (what an ai step gets in its context). */
export interface StepMemory {
  list(): Promise<MemoryEntry[]>;
  add(entry: NewMemoryEntry): Promise<MemoryEntry>;
}

export interface MemoryInput {
  text: string;
  kind?: string | undefined;
}

/** The checked entry, or an invalid_input error that says what is wrong. */
export function checkEntry(input: MemoryInput): { text: string; kind: MemoryKind } {
  const text = typeof input.text === 'string' ? input.text.trim() : '';
  if (!text) throw new AtlasError('invalid_input', 'a memory entry needs some text (it is empty)');
  const bytes = Buffer.byteLength(text);
  if (bytes > MEMORY_ENTRY_MAX_BYTES) {
    throw new AtlasError('invalid_input', `a memory entry holds at most ${MEMORY_ENTRY_MAX_BYTES} bytes, this one has ${bytes}; keep entries short (a decision, a note, a pattern) and split long ones`, {
      details: { bytes, max_bytes: MEMORY_ENTRY_MAX_BYTES },
    });
  }
  const kind = input.kind ?? 'note';
  if (!MEMORY_KINDS.includes(kind as MemoryKind)) {
    throw new AtlasError('invalid_input', `unknown memory kind ${JSON.stringify(kind)}; expected one of ${MEMORY_KINDS.join(', ')}`, { details: { kind } });
  }
  return { text, kind: kind as MemoryKind };
}

/** The workspace must exist (memory is kept per workspace). */
async function knownWorkspace(store: Store, workspace: string): Promise<void> {
  await store.workspaces.get(assertName('workspace', workspace));
}

export async function addMemory(store: Store, workspace: string, input: MemoryInput & { source?: string }): Promise<MemoryEntry> {
  const e = checkEntry(input);
  await knownWorkspace(store, workspace);
  return store.memory.add(workspace, { ...e, source: input.source ?? 'cli' });
}

export async function listMemory(store: Store, workspace: string): Promise<MemoryEntry[]> {
  await knownWorkspace(store, workspace);
  return store.memory.list(workspace);
}

/** Entries holding every word of `query` (case-insensitive, in the text, kind or source), oldest first. */
export async function searchMemory(store: Store, workspace: string, query: string): Promise<MemoryEntry[]> {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) throw new AtlasError('invalid_input', 'memory search needs a word to look for');
  const all = await listMemory(store, workspace);
  return all.filter((e) => {
    const hay = `${e.text}\n${e.kind}\n${e.source}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

export async function removeMemory(store: Store, workspace: string, id: string): Promise<MemoryEntry> {
  if (!/^\d{1,15}$/.test(id)) throw new AtlasError('invalid_input', `memory entry ids are numbers (as 'atlas memory list -w ${workspace}' shows them), got ${JSON.stringify(id)}`);
  await knownWorkspace(store, workspace);
  return store.memory.remove(workspace, id);
}

export interface RenderedMemory {
  text: string;
  /** Entries given, newest first. */
  given: number;
  total: number;
}

/** Entries newest first, as many whole ones as fit in `maxBytes`, one `- [kind] text` item each. */
export function renderMemory(entries: readonly MemoryEntry[], maxBytes: number): RenderedMemory {
  let text = '';
  let size = 0;
  let given = 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    const item = `- [${e.kind}] ${e.text.replace(/\n/g, '\n  ')}\n`;
    const n = Buffer.byteLength(item);
    if (size + n > maxBytes) break;
    text += item;
    size += n;
    given++;
  }
  return { text, given, total: entries.length };
}

export interface MemoryOutLine {
  line: number;
  entry?: { text: string; kind: MemoryKind };
  problem?: string;
}

/** The lines an ai step wrote to ATLAS_MEMORY_OUT, each an entry or the reason it is skipped. */
export function readMemoryOut(file: string): MemoryOutLine[] {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(OUT_MAX_BYTES);
      const n = fs.readSync(fd, buf, 0, OUT_MAX_BYTES, 0);
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return []; // the step wrote none
  }
  const out: MemoryOutLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    const line = i + 1;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      out.push({ line, problem: 'not JSON (expected {"text": "...", "kind": "note"})' });
      return;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v) || typeof (v as { text?: unknown }).text !== 'string') {
      out.push({ line, problem: 'expected an object with a "text" string' });
      return;
    }
    const o = v as { text: string; kind?: unknown };
    try {
      out.push({ line, entry: checkEntry({ text: o.text, kind: o.kind === undefined ? undefined : String(o.kind) }) });
    } catch (err) {
      out.push({ line, problem: (err as Error).message });
    }
  });
  return out;
}

/** Stores what an ai step wrote; `key` makes each line count once across a re-read. */
export async function storeMemoryOut(memory: StepMemory, lines: MemoryOutLine[], source: string, keyPrefix: string): Promise<MemoryEntry[]> {
  const added: MemoryEntry[] = [];
  for (const l of lines) {
    if (!l.entry) continue;
    const e: NewMemoryEntry = { ...l.entry, source, key: `${keyPrefix}:${l.line}` };
    added.push(await memory.add(e));
  }
  return added;
}
