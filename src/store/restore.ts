// `atlas restore FILE`: the backup is verified whole first, then restored where its manifest
// says it belongs: a home's files into an empty home (backup.ts), a PostgreSQL store's rows
// into the database and schema the home's config.yaml (or ATLAS_STORE_URL) names (pg/pg-backup.ts).
import { AtlasError } from '../errors.js';
import { loadConfig } from '../config/config.js';
import { BACKUP_FORMAT, openForRead, restoreBackup, verifyBackup, type RestoreResult } from './backup.js';
import { storeUrl } from './open-store.js';
import { HomePaths } from './paths.js';
import { restorePgBackup, type PgRestoreResult } from './pg/pg-backup.js';
import { readTgz } from './tgz.js';

export type AnyRestoreResult = ({ store: 'fs' } & RestoreResult) | ({ store: 'postgres' } & PgRestoreResult);

export async function restore(file: string, home: string, options: { force?: boolean } = {}): Promise<AnyRestoreResult> {
  const manifest = await verifyBackup(file);
  if (manifest.about?.['store'] !== 'postgres') return { store: 'fs', ...(await restoreBackup(file, home, { ...options, verified: manifest })) };
  const paths = new HomePaths(home);
  const config = await loadConfig(paths.config);
  const url = storeUrl(config);
  if (!url) {
    throw new AtlasError(
      'invalid_input',
      `${file} is a backup of a PostgreSQL store (schema ${String(manifest.about['schema'] ?? '?')} of ${String(manifest.about['server'] ?? '?')}); name the database to restore it into with store: postgres://... in ${paths.config} (and store_schema: if not atlas), or ATLAS_STORE_URL`,
    );
  }
  const r = await restorePgBackup({ url, schema: config.store_schema }, manifest, (onEntry) => readTgz(openForRead(file), file, BACKUP_FORMAT, onEntry), options);
  return { store: 'postgres', ...r };
}
