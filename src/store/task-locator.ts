// Locating tasks: which workspace holds a task id (ids are unique across the home), and the
// task ids there are. A remembered location is checked on disk before it is trusted (the
// task may have been deleted or moved behind this process's back).
import fsp from 'node:fs/promises';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { assertName, assertTaskId, isValidName, isValidTaskId } from './names.js';
import type { HomePaths } from './paths.js';
import { compareIds } from './task-ids.js';

export class TaskLocator {
  /** id -> workspace, learned from lookups and listings. */
  private readonly ids = new Map<string, string>();

  constructor(private readonly paths: HomePaths) {}

  remember(id: string, workspace: string): void {
    this.ids.set(id, workspace);
  }

  forget(id: string): void {
    this.ids.delete(id);
  }

  async workspaceNames(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.paths.workspacesDir)).filter(isValidName).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError('list', this.paths.workspacesDir, err);
    }
  }

  /** The workspace that holds task `id`, or undefined. */
  async locate(id: string): Promise<string | undefined> {
    assertTaskId(id);
    const known = this.ids.get(id);
    if (known !== undefined && (await exists(this.paths.taskDir(known, id)))) return known;
    this.ids.delete(id);
    for (const ws of await this.workspaceNames()) {
      if (await exists(this.paths.taskDir(ws, id))) {
        this.ids.set(id, ws);
        return ws;
      }
    }
    return undefined;
  }

  /** The workspace that holds task `id`; not_found when none does. */
  async require(id: string): Promise<string> {
    const ws = await this.locate(id);
    if (ws === undefined) throw new AtlasError('not_found', `no task ${id}; 'atlas list' shows the tasks there are`, { details: { id } });
    return ws;
  }

  /** Task ids of one workspace (or all), newest first. Ids sort by creation time. */
  async listTaskIds(workspace?: string): Promise<Array<{ id: string; workspace: string }>> {
    const wss = workspace === undefined ? await this.workspaceNames() : [assertName('workspace', workspace)];
    const out: Array<{ id: string; workspace: string }> = [];
    for (const ws of wss) {
      let names: string[];
      try {
        names = await fsp.readdir(this.paths.tasksDir(ws));
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw storageError('list', this.paths.tasksDir(ws), err);
      }
      for (const id of names) {
        if (!isValidTaskId(id)) continue;
        out.push({ id, workspace: ws });
        this.ids.set(id, ws);
      }
    }
    return out.sort((a, b) => compareIds(b.id, a.id));
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}
