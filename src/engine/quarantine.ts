// `atlas doctor --clear-quarantine`: deletes the tasks recovery could not read and moved to
// quarantine/ for inspection. Each entry is renamed out of sight first, so an interrupted
// clear leaves either the entry or nothing of it that looks like one.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, storageError } from '../errors.js';
import { fsyncDir } from '../store/atomic.js';

export interface QuarantineCleared {
  removed: string[];
}

export async function clearQuarantine(dir: string): Promise<QuarantineCleared> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { removed: [] };
    throw storageError('read', dir, err);
  }
  const removed: string[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    const doomed = path.join(dir, `.clearing-${name}`);
    if (!name.startsWith('.')) {
      await fsp.rename(full, doomed).catch((err: unknown) => {
        throw storageError('remove', full, err);
      });
      removed.push(name);
    }
    await fsp.rm(name.startsWith('.clearing-') ? full : doomed, { recursive: true, force: true });
  }
  if (names.length > 0) await fsyncDir(dir);
  return { removed };
}
