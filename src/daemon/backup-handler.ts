// backup.create: the daemon makes the snapshot (backup.ts for a home, pg/pg-backup.ts for a
// PostgreSQL store) while it keeps running tasks, and
// streams the compressed bytes to the caller as `backup.chunk` notifications; the result, sent
// last, carries the byte count and SHA-256 of the whole stream so the caller can tell a
// complete copy from a cut one. The daemon writes nothing outside its home (DESIGN §5): the
// CLI writes the file. A slow reader holds the snapshot back (it waits for the socket to
// drain), so memory stays bounded whatever the size of the home.
import crypto from 'node:crypto';
import { AtlasError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { NOTIFY } from '../protocol/methods.js';
import { BACKUP_FORMAT, backupAbout, writeBackup } from '../store/backup.js';
import { lockTaskDir } from '../store/task-lock.js';
import { TgzWriter } from '../store/tgz.js';
import { PgStore } from '../store/pg/pg-store.js';
import { pgBackupAbout, writePgBackup } from '../store/pg/pg-backup.js';
import type { Connection } from './rpc-server.js';

export interface BackupResult {
  bytes: number;
  sha256: string;
  files: number;
  tasks: number;
  store: 'fs' | 'postgres';
  created_at: string;
  unreadable: string[];
}

const CHUNK = 256 * 1024;
const MAX_BUFFERED = 4 * 1024 * 1024;

export async function createBackup(engine: Engine, conn: Connection, busy: { backup?: boolean }): Promise<BackupResult> {
  if (busy.backup) throw new AtlasError('not_allowed', 'a backup is already being made; wait for it to finish', { retryable: true });
  busy.backup = true;
  const paths = engine.store.paths;
  const writer = new TgzWriter(BACKUP_FORMAT);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let stopped = false;
  conn.onClose(() => {
    stopped = true;
    writer.destroy(new Error('the client went away'));
  });
  // The consumer: compressed bytes to the socket, waiting whenever the client lags.
  const sending = (async () => {
    let pending: Buffer[] = [];
    let size = 0;
    const flush = async () => {
      if (!size) return;
      const data = Buffer.concat(pending);
      pending = [];
      size = 0;
      hash.update(data);
      bytes += data.length;
      conn.notify(NOTIFY.BACKUP_CHUNK, { data: data.toString('base64') });
      if ((conn.bufferedBytes?.() ?? 0) > MAX_BUFFERED) await conn.drained?.();
    };
    for await (const chunk of writer.output) {
      pending.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= CHUNK) await flush();
    }
    await flush();
  })();
  try {
    const store = engine.store;
    let about: Record<string, unknown>;
    let sum: { files: number; tasks: number; unreadable?: string[] };
    if (store instanceof PgStore) {
      // One snapshot of the database's atlas schema (pg-backup.ts).
      const s = await writePgBackup(store.pool, store.target, writer);
      sum = s;
      about = pgBackupAbout(store.target, s);
    } else {
      const active = new Set(engine.activeTaskIds);
      const s = await writeBackup(paths, writer, {
        lockTask: async (ws, id) => {
          if (active.has(id) || engine.activeTaskIds.includes(id)) return undefined;
          try {
            const lock = await lockTaskDir(paths.taskDir(ws, id), { waitMs: 2_000 });
            return () => lock.release();
          } catch (err) {
            // A runner took it meanwhile: read it as a crash would leave it.
            if (err instanceof AtlasError && err.code === 'locked') return undefined;
            throw err;
          }
        },
      });
      sum = s;
      about = backupAbout(paths, s);
    }
    const manifest = await writer.finish(about);
    await sending;
    if (stopped) throw new AtlasError('internal', 'the client went away before the backup was sent');
    return { bytes, sha256: hash.digest('hex'), files: sum.files, tasks: sum.tasks, store: store.kind, created_at: manifest.created_at, unreadable: sum.unreadable ?? [] };
  } catch (err) {
    writer.destroy();
    await sending.catch(() => undefined);
    throw err;
  } finally {
    busy.backup = false;
  }
}
