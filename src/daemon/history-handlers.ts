// The daemon's methods for keeping history (DESIGN §14): backups, and (archive.ts) prune,
// archived tasks and unarchive. Kept apart from handlers.ts, which spreads them in.
import type { Engine } from '../engine/engine.js';
import { createBackup } from './backup-handler.js';
import type { Handlers } from './rpc-server.js';

export function historyHandlers(engine: Engine): Pick<Handlers, 'backup.create'> {
  const busy: { backup?: boolean } = {};
  return {
    'backup.create': async (_p, conn) => createBackup(engine, conn, busy),
  };
}
