// What `daemon status` adds for a shared store: the database (never its password), this
// daemon's id, and every daemon of the database with its heartbeat age.
import type { Engine } from '../engine/engine.js';
import { describeTarget } from '../store/pg/connect.js';
import { listDaemons, type DaemonRow } from '../store/pg/cluster-sql.js';
import { PgStore } from '../store/pg/pg-store.js';

export interface ClusterStatus {
  store: 'fs' | 'postgres';
  store_server?: string;
  store_schema?: string;
  daemon_id?: string;
  daemons?: DaemonRow[];
  lease_takeovers?: number;
  leases_lost?: number;
}

export async function clusterStatus(engine: Engine): Promise<ClusterStatus> {
  const store = engine.store;
  if (!(store instanceof PgStore)) return { store: 'fs' };
  return {
    store: 'postgres',
    store_server: describeTarget(store.target.url),
    store_schema: store.target.schema,
    daemon_id: store.db.daemonId,
    daemons: await listDaemons(store.db),
    lease_takeovers: engine.cluster?.takeovers ?? 0,
    leases_lost: engine.cluster?.leasesLost ?? 0,
  };
}
