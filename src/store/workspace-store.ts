// Workspaces: a name bound to a working directory, kept in workspaces/<ws>/workspace.json.
import fsp from 'node:fs/promises';
import { AtlasError, errnoCode, isAtlasError, storageError } from '../errors.js';
import { ensureDir, writeFileDurable } from './atomic.js';
import { assertName, isValidName } from './names.js';
import type { HomePaths } from './paths.js';
import type { StoreWorkspaces } from './store.js';
import { SCHEMA_VERSION, type WorkspaceRecord } from './records.js';

export class WorkspaceStore implements StoreWorkspaces {
  constructor(private readonly paths: HomePaths) {}

  async create(input: Omit<WorkspaceRecord, 'schema_version' | 'created_at'>): Promise<WorkspaceRecord> {
    assertName('workspace', input.name);
    const rec: WorkspaceRecord = { schema_version: SCHEMA_VERSION, ...input, created_at: new Date().toISOString() };
    const file = this.paths.workspaceFile(input.name);
    await ensureDir(this.paths.workspaceDir(input.name));
    try {
      await this.get(input.name);
      throw new AtlasError('already_exists', `workspace ${input.name} already exists; 'atlas workspace show ${input.name}' shows it`, {
        details: { name: input.name },
      });
    } catch (err) {
      if (isAtlasError(err, 'corrupt')) await this.setAside(file);
      else if (!isAtlasError(err, 'not_found')) throw err;
    }
    await writeFileDurable(file, JSON.stringify(rec, null, 2) + '\n');
    return rec;
  }

  async get(name: string): Promise<WorkspaceRecord> {
    const file = this.paths.workspaceFile(name);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        throw new AtlasError('not_found', `no workspace ${name}; create it with 'atlas workspace create ${name} --path DIR'`, { details: { name } });
      }
      throw storageError('read', file, err);
    }
    try {
      const rec = JSON.parse(text) as WorkspaceRecord;
      if (typeof rec !== 'object' || rec === null || typeof rec.path !== 'string') throw new Error('not a workspace record');
      return rec;
    } catch (err) {
      throw new AtlasError('corrupt', `${file} is not valid JSON`, { details: { file }, cause: err });
    }
  }

  async list(): Promise<WorkspaceRecord[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.paths.workspacesDir)).filter(isValidName).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError('list', this.paths.workspacesDir, err);
    }
    const out: WorkspaceRecord[] = [];
    for (const n of names) {
      try {
        out.push(await this.get(n));
      } catch {
        // a directory without workspace.json (tasks restored without it) is not listed
      }
    }
    return out;
  }

  /** A corrupt record is kept beside the new one for inspection, never silently lost. */
  private async setAside(file: string): Promise<void> {
    const to = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await fsp.rename(file, to).catch((err: unknown) => {
      throw storageError('set aside', file, err);
    });
  }

  /** Removes the workspace record (a corrupt one too); with `purge`, its task history too. */
  async remove(name: string, purge: boolean): Promise<void> {
    try {
      await this.get(name);
    } catch (err) {
      if (!isAtlasError(err, 'corrupt')) throw err;
    }
    if (purge) {
      await fsp.rm(this.paths.workspaceDir(name), { recursive: true, force: true });
    } else {
      await fsp.rm(this.paths.workspaceFile(name), { force: true });
    }
  }
}
