// Several real daemons (one home each) on one PostgreSQL database, for the cluster tests.
// Each home's config.yaml names the database and schema; steps append to a shared file so a
// test can count what ran where, independently of what the store says.
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { TestHome, waitFor } from '../helpers/daemon.js';

export const APPEND_TEMPLATE = (steps: number, sleep: string) =>
  [
    'name: append',
    'inputs:',
    '  log: { required: true }',
    'steps:',
    ...Array.from({ length: steps }, (_, i) => [
      `  - name: s${i + 1}`,
      '    type: shell',
      `    run: echo "$ATLAS_TASK_ID s${i + 1} start $ATLAS_HOME" >> "$ATLAS_INPUT_LOG"; sleep ${sleep}; echo "$ATLAS_TASK_ID s${i + 1} done $ATLAS_HOME" >> "$ATLAS_INPUT_LOG"`,
    ]).flat(),
  ].join('\n') + '\n';

export interface ClusterOptions {
  url: string;
  schema: string;
  workspaces: string[];
  ttl?: string;
  slots?: number;
  /** More config.yaml lines. */
  extra?: string[];
}

export class ClusterHomes {
  readonly homes: TestHome[] = [];
  readonly pool: pg.Pool;

  constructor(
    readonly o: ClusterOptions,
    n: number,
    template: string,
  ) {
    for (let i = 0; i < n; i++) {
      const h = new TestHome();
      fs.mkdirSync(h.home, { recursive: true, mode: 0o700 });
      fs.writeFileSync(
        path.join(h.home, 'config.yaml'),
        [
          `store: ${o.url}`,
          `store_schema: ${o.schema}`,
          `lease_ttl: ${o.ttl ?? '15s'}`,
          `max_concurrent_tasks: ${o.slots ?? 4}`,
          `workspaces: [${o.workspaces.join(', ')}]`,
          'step_defaults:',
          '  kill_grace: 300ms',
          ...(o.extra ?? []),
        ].join('\n') + '\n',
        { mode: 0o600 },
      );
      h.writeTemplate('append', template);
      this.homes.push(h);
    }
    this.pool = new pg.Pool({ connectionString: o.url, max: 2, options: `-c search_path=${o.schema}` });
    // The database is dropped (WITH FORCE) after the file: an idle client cut off then is no failure.
    this.pool.on('error', () => undefined);
  }

  async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /** Waits until every task is in a settled status; returns the counts by status. */
  async waitAllSettled(total: number, timeoutMs: number): Promise<Record<string, number>> {
    return waitFor(
      `all ${total} tasks to settle`,
      async () => {
        const rows = await this.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM tasks GROUP BY status');
        const counts = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
        const moving = (counts['pending'] ?? 0) + (counts['running'] ?? 0);
        return rows.reduce((n, r) => n + Number(r.n), 0) === total && moving === 0 ? counts : undefined;
      },
      timeoutMs,
      100,
    );
  }

  async dispose(): Promise<void> {
    const errors: string[] = [];
    for (const h of this.homes) {
      try {
        await h.dispose();
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    await this.pool.end();
    if (errors.length) throw new Error(errors.join('\n'));
  }
}

/** Lines of the shared append file as [task, step, phase, home]. */
export function readAppends(file: string): Array<[string, string, string, string]> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ') as [string, string, string, string]);
}
