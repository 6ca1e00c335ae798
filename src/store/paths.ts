// The layout of an atlas home (DESIGN §2). Only this file joins names into paths, and it
// only accepts names that passed validation.
import os from 'node:os';
import path from 'node:path';
import { assertName, assertTaskId } from './names.js';

export function defaultHome(): string {
  const env = process.env['ATLAS_HOME'];
  return path.resolve(env && env.length > 0 ? env : path.join(os.homedir(), '.atlas'));
}

export class HomePaths {
  readonly root: string;
  readonly workspacesDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.workspacesDir = path.join(this.root, 'workspaces');
  }

  get config(): string { return path.join(this.root, 'config.yaml'); }
  get socket(): string { return path.join(this.root, 'atlas.sock'); }
  /** The daemon's pid alone, one line. */
  get pidFile(): string { return path.join(this.root, 'daemon.pid'); }
  /** The running daemon's pid, start time, version, socket and start, as JSON. */
  get ownerFile(): string { return path.join(this.root, 'daemon.json'); }
  get lockFile(): string { return path.join(this.root, 'daemon.lock'); }
  get logsDir(): string { return path.join(this.root, 'logs'); }
  get daemonLog(): string { return path.join(this.logsDir, 'daemon.log'); }
  get templatesDir(): string { return path.join(this.root, 'templates'); }
  get worktreesDir(): string { return path.join(this.root, 'worktrees'); }
  get quarantineDir(): string { return path.join(this.root, 'quarantine'); }
  get eventsDir(): string { return path.join(this.root, 'events'); }
  get schedulesDir(): string { return path.join(this.root, 'schedules'); }

  worktree(ws: string): string { return path.join(this.worktreesDir, assertName('workspace', ws)); }
  // Below the workspaces directory, names that passed validation (no separator, no dot
  // segment) are joined by plain concatenation: these run several times per step, and
  // path.join's normalising was the daemon's largest allocation per step.
  workspaceDir(ws: string): string { return `${this.workspacesDir}/${assertName('workspace', ws)}`; }
  workspaceFile(ws: string): string { return `${this.workspaceDir(ws)}/workspace.json`; }
  /** The workspace's memory journal (memory.ts). */
  memoryFile(ws: string): string { return `${this.workspaceDir(ws)}/memory.jsonl`; }
  tasksDir(ws: string): string { return `${this.workspaceDir(ws)}/tasks`; }
  taskDir(ws: string, id: string): string { return `${this.tasksDir(ws)}/${assertTaskId(id)}`; }
  taskFile(ws: string, id: string): string { return `${this.taskDir(ws, id)}/task.json`; }
  taskBackup(ws: string, id: string): string { return `${this.taskDir(ws, id)}/task.json.bak`; }
  taskLog(ws: string, id: string): string { return `${this.taskDir(ws, id)}/task.log`; }
  artifactsDir(ws: string, id: string): string { return `${this.taskDir(ws, id)}/artifacts`; }
  scheduleFile(name: string): string { return path.join(this.schedulesDir, `${assertName('schedule', name)}.json`); }
  userTemplate(name: string): string { return path.join(this.templatesDir, `${assertName('template', name)}.yaml`); }
}
