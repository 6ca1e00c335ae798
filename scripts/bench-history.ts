// Keeping history (issue 14): what prune saves and how fast it goes, and how long a backup
// and a restore of a big home take.
//
//   prune    1,000 finished `demo` tasks (one run through the engine, cloned on disk as the
//            prune-kill test does, each its own task with its log and artifacts): disk used
//            (allocated blocks) by the tasks before, and by what is left plus the archives
//            after, and the prune's throughput (tasks/s), in-process
//   backup   10,000 tasks (scripts/history.ts: real task files) backed up into a file
//            (backup.ts, as the daemon does, without the socket), then restored into a new
//            home (every checksum verified first, every file fsynced)
//
// Standalone: node dist/scripts/bench-history.js [--prune N] [--backup N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { Engine } from '../src/engine/engine.js';
import { prune } from '../src/engine/prune.js';
import { TaskArchive } from '../src/store/archive.js';
import { BACKUP_FORMAT, backupAbout, restoreBackup, writeBackup } from '../src/store/backup.js';
import { HomePaths } from '../src/store/paths.js';
import type { TaskRecord } from '../src/store/records.js';
import { TgzWriter } from '../src/store/tgz.js';
import { generateHistory, writeHistory } from './history.js';

export interface HistoryFigures {
  prune: { tasks: number; disk_before_kb: number; disk_after_kb: number; ratio: number; archive_kb: number; seconds: number; tasks_per_s: number };
  backup: { tasks: number; files: number; seconds: number; file_mb: number; restore_seconds: number; restored_tasks: number };
}

const r1 = (n: number) => Math.round(n * 10) / 10;
const r3 = (n: number) => Math.round(n * 1000) / 1000;

/** Bytes allocated on disk under `dir` (what du counts). */
function diskUsed(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      total += st.blocks * 512;
      if (e.isDirectory()) walk(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return total;
}

async function pruneFigures(scratch: string, n: number): Promise<HistoryFigures['prune']> {
  const root = fs.mkdtempSync(path.join(scratch, 'prune-'));
  const home = path.join(root, 'home');
  const wsDir = path.join(root, 'ws');
  fs.mkdirSync(wsDir);
  const config = { ...DEFAULT_CONFIG, kill_grace_ms: 200 };
  // One demo task through the engine: its task.json, log and artifacts are what a demo leaves.
  let engine = await Engine.open({ home, config });
  await engine.store.workspaces.create({ name: 'w', path: wsDir, kind: 'path', repo: null, branch: null });
  await engine.start();
  const seed = await engine.startTask({ template: 'demo', workspace: 'w', inputs: {} });
  const done = await engine.waitForSettled(seed.id, AbortSignal.timeout(120_000));
  if (done.status !== 'completed') throw new Error(`the demo task ended ${done.status}: ${done.error ?? ''}`);
  await engine.shutdown(2000);
  const paths = new HomePaths(home);
  const seedDir = paths.taskDir('w', seed.id);
  const seedTask = JSON.parse(fs.readFileSync(paths.taskFile('w', seed.id), 'utf8')) as TaskRecord;
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  for (let i = 0; i < n; i++) {
    const at = new Date(t0 + i * 60_000).toISOString();
    const id = `task-${at.slice(0, 10).replace(/-/g, '')}-${at.slice(11, 19).replace(/:/g, '')}`;
    const dir = paths.taskDir('w', id);
    fs.cpSync(seedDir, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'task.json'), JSON.stringify({ ...seedTask, id, created_at: at, updated_at: at, completed_at: at }) + '\n', { mode: 0o600 });
  }
  fs.rmSync(seedDir, { recursive: true });
  const tasksDir = path.join(paths.workspacesDir, 'w', 'tasks');
  const before = diskUsed(tasksDir);
  engine = await Engine.open({ home, config });
  await engine.start();
  const started = performance.now();
  const r = await prune(engine, new TaskArchive(paths), { older_than_ms: 86_400_000 });
  const seconds = (performance.now() - started) / 1000;
  await engine.shutdown(2000);
  if (r.archived.length !== n) throw new Error(`the prune archived ${r.archived.length} of ${n} tasks (skipped: ${JSON.stringify(r.skipped.slice(0, 3))})`);
  const archives = diskUsed(path.join(home, 'archive'));
  const after = diskUsed(tasksDir) + archives;
  fs.rmSync(root, { recursive: true, force: true });
  return { tasks: n, disk_before_kb: Math.round(before / 1024), disk_after_kb: Math.round(after / 1024), ratio: r3(after / before), archive_kb: Math.round(archives / 1024), seconds: r3(seconds), tasks_per_s: r1(n / seconds) };
}

async function backupFigures(scratch: string, n: number): Promise<HistoryFigures['backup']> {
  const root = fs.mkdtempSync(path.join(scratch, 'backup-'));
  const home = path.join(root, 'home');
  writeHistory(home, generateHistory({ n, newest: new Date(), spacingMs: 60_000 }));
  const paths = new HomePaths(home);
  const file = path.join(root, 'backup.tar.gz');
  const started = performance.now();
  const writer = new TgzWriter(BACKUP_FORMAT);
  const out = fs.createWriteStream(file, { mode: 0o600 });
  const writing = pipeline(writer.output, out);
  const sum = await writeBackup(paths, writer);
  await writer.finish(backupAbout(paths, sum));
  await writing;
  const fd = fs.openSync(file, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const seconds = (performance.now() - started) / 1000;
  const restoredAt = performance.now();
  const restored = await restoreBackup(file, path.join(root, 'restored'));
  const restoreSeconds = (performance.now() - restoredAt) / 1000;
  const size = fs.statSync(file).size;
  fs.rmSync(root, { recursive: true, force: true });
  return { tasks: sum.tasks, files: sum.files, seconds: r3(seconds), file_mb: r1(size / 2 ** 20), restore_seconds: r3(restoreSeconds), restored_tasks: restored.tasks };
}

export async function historyBench(scratch: string, o: { pruneTasks?: number; backupTasks?: number } = {}): Promise<HistoryFigures> {
  return { prune: await pruneFigures(scratch, o.pruneTasks ?? 1000), backup: await backupFigures(scratch, o.backupTasks ?? 10_000) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-history-'));
  try {
    console.log(JSON.stringify(await historyBench(scratch, { pruneTasks: arg('--prune', 1000), backupTasks: arg('--backup', 10_000) }), null, 2));
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
