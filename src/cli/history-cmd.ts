// Keeping history (DESIGN §14): `atlas backup [FILE]`, `atlas backup --verify FILE`,
// `atlas restore FILE [--force]`, `atlas prune [...]`, `atlas unarchive ID`.
//
// backup: the daemon makes the snapshot and streams it; this process writes FILE (a temp file,
// fsync, then published under its name only if every byte arrived and the SHA-256 matches).
// --verify and restore need no daemon: a restore goes into an empty home, where none runs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AtlasError } from '../errors.js';
import type { Notification } from '../protocol/methods.js';
import { stamp, verifyBackup } from '../store/backup.js';
import { restore } from '../store/restore.js';
import { withClient, homeOf, type Cli, type GlobalArgs } from './connect.js';
import { PRUNABLE_STATUSES } from '../config/retention-config.js';
import { EXIT, c, fail, info, printJson } from './output.js';

type Args = GlobalArgs & { file?: string; verify?: boolean; force?: boolean };

export function registerHistoryCommands(cli: Cli): Cli {
  return cli
    .command(
      'backup [file]',
      'write a consistent, compressed, checksummed snapshot of the home (tasks keep running); --verify FILE checks one',
      (y) =>
        y
          .positional('file', { type: 'string', describe: 'where to write it (default ./atlas-backup-<date>-<time>.tar.gz)' })
          .option('verify', { type: 'boolean', describe: 'check every checksum of FILE instead of making a backup' }),
      async (args) => {
        try {
          if (args.verify) await verify(args);
          else await backup(args);
        } catch (err) {
          fail(err);
        }
      },
    )
    .command(
      'prune',
      'move finished tasks past their age into compressed archives (show, logs and artifacts still read them); --delete removes them instead',
      (y) =>
        y
          .option('older-than', { type: 'string', default: '30d', describe: 'tasks whose last change is older than this (30d, 12h, 90m)' })
          .option('status', { type: 'string', array: true, choices: PRUNABLE_STATUSES, describe: 'only these statuses (default: completed, rejected, abandoned)' })
          .option('workspace', { alias: 'w', type: 'string', describe: 'only this workspace' })
          .option('dry-run', { type: 'boolean', describe: 'list what would be pruned, change nothing' })
          .option('delete', { type: 'boolean', describe: 'delete instead of archiving (a purge: the guard refuses a burst without --force)' })
          .option('force', { type: 'boolean', describe: 'past the guard against mass deletion' }),
      async (args) => {
        try {
          const r = await withClient(args, (client) =>
            client.call('task.prune', {
              older_than: args.olderThan,
              ...(args.status?.length ? { status: args.status } : {}),
              ...(args.workspace ? { workspace: args.workspace } : {}),
              dry_run: args.dryRun === true,
              delete: args.delete === true,
              force: args.force === true,
            }),
          );
          if (args.json) return printJson(r);
          const ids = r.action === 'delete' ? r.deleted : r.archived;
          const verb = r.dry_run ? (r.action === 'delete' ? 'would delete' : 'would archive') : r.action === 'delete' ? 'deleted' : 'archived';
          for (const id of ids) process.stdout.write(`${id}\n`);
          for (const s of r.skipped) info(c.errDim(`atlas: skipped ${s.id}: ${s.reason}`));
          info(`atlas: ${verb} ${ids.length} task(s)${r.action === 'archive' && !r.dry_run ? ` (${(r.archive_bytes / 1024 / 1024).toFixed(1)} MiB of archives)` : ''}${r.skipped.length ? `, skipped ${r.skipped.length}` : ''}`);
        } catch (err) {
          fail(err);
        }
      },
    )
    .command(
      'unarchive <id>',
      'bring an archived task back among the live ones',
      (y) => y.positional('id', { type: 'string', demandOption: true }),
      async (args) => {
        try {
          const t = await withClient(args, (client) => client.call('task.unarchive', { id: args.id }));
          if (args.json) return printJson(t);
          info(`atlas: task ${t.id} is live again (${t.status}, workspace ${t.workspace})`);
        } catch (err) {
          fail(err);
        }
      },
    )
    .command(
      'restore <file>',
      'restore a backup into an empty home, or a PostgreSQL backup into the empty database config.yaml names (verified first); daemons then resume every unfinished task',
      (y) =>
        y
          .positional('file', { type: 'string', demandOption: true, describe: 'a file made by atlas backup' })
          .option('force', { type: 'boolean', describe: 'restore over a home that is not empty (moved aside to <home>.before-restore-<date>), or a PostgreSQL schema that holds data (renamed to <schema>_before_restore_<ms>); nothing is deleted' }),
      async (args) => {
        try {
          const r = await restore(path.resolve(args.file!), homeOf(args), { force: args.force === true });
          if (args.json) return printJson(r);
          if (r.moved_aside) info(`atlas: what was there before is now ${r.moved_aside}`);
          const where = r.store === 'postgres' ? `schema ${r.schema} of ${r.server}` : r.home;
          const start = r.store === 'postgres' ? "the daemons of that database resume every unfinished task when they start ('atlas daemon start')" : `the daemon resumes every unfinished task when it starts ('atlas --home ${r.home} daemon start')`;
          info(
            `atlas: restored ${r.tasks} task(s) (${r.store === 'postgres' ? `${r.rows} rows` : `${r.files} files`}, backup of ${r.backup_created_at}) into ${where}; ${start}` +
              (r.rerun.length ? `; ${r.rerun.length} step(s) that were running at backup time will run again` : ''),
          );
        } catch (err) {
          fail(err);
        }
      },
    );
}

async function verify(args: Args): Promise<void> {
  if (!args.file) fail(new AtlasError('invalid_input', 'backup --verify needs the FILE to check'));
  const m = await verifyBackup(path.resolve(args.file));
  const about = m.about ?? {};
  if (args.json) return printJson({ valid: true, file: path.resolve(args.file), created_at: m.created_at, entries: m.entries.length, about });
  const from = about['store'] === 'postgres' ? `the PostgreSQL store, schema ${String(about['schema'] ?? '?')} of ${String(about['server'] ?? '?')}` : String(about['home'] ?? '?');
  info(`atlas: ${args.file} is intact: ${m.entries.length} files, every checksum matches (${String(about['tasks'] ?? '?')} tasks, made ${m.created_at} from ${from})`);
}

async function backup(args: Args): Promise<void> {
  const file = path.resolve(args.file ?? `atlas-backup-${stamp(new Date())}.tar.gz`);
  if (fs.existsSync(file)) {
    info(`atlas: ${file} already exists; name another file`);
    process.exit(EXIT.USAGE);
  }
  const tmp = `${file}.partial-${process.pid}`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let writeError: unknown;
  const onNotify = (n: Notification) => {
    if (n.method !== 'backup.chunk' || writeError) return;
    const data = Buffer.from(n.params.data, 'base64');
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
      hash.update(data);
      bytes += data.length;
    } catch (err) {
      writeError = err;
    }
  };
  try {
    const r = await withClient(args, (client) => client.call('backup.create'), { onNotify });
    if (writeError) throw new AtlasError('storage', `could not write ${tmp}: ${(writeError as Error).message}`);
    const sha = hash.digest('hex');
    if (bytes !== r.bytes || sha !== r.sha256) throw new AtlasError('internal', `the backup arrived incomplete (${bytes} of ${r.bytes} bytes); nothing was written, try again`);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.linkSync(tmp, file); // fails rather than replace a file that appeared meanwhile
    const dfd = fs.openSync(path.dirname(file), 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
    if (args.json) return printJson({ file, ...r });
    info(`atlas: backup ${r.store === 'postgres' ? 'of the PostgreSQL store ' : ''}written to ${file}: ${r.tasks} task(s), ${r.files} files, ${(r.bytes / 1024 / 1024).toFixed(1)} MiB, sha256 ${r.sha256}`);
    if (r.unreadable.length) info(`atlas: ${r.unreadable.length} task(s) had an unreadable task.json and were copied as they are: ${r.unreadable.join(', ')}`);
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      // closed above
    }
    fs.rmSync(tmp, { force: true });
  }
}
