// Schedules in PostgreSQL (migration 004): a row per schedule (its record, and its cursor as a
// column for the compare-and-set) and a row per fire. `claim` moves the cursor with
// `UPDATE ... WHERE cursor = $from` in the transaction that inserts the fires: of several
// daemons passing over the same slots at once, exactly one records them. `settle` is a
// compare-and-set on the fire's task id.
import type pg from 'pg';
import { AtlasError } from '../../errors.js';
import { assertName } from '../names.js';
import type { FireRecord, FireState, ScheduleRecord, StoreSchedules } from '../schedules.js';
import type { Db } from './db.js';

/** Settled fires kept per schedule (open ones always are). */
const KEEP_FIRES = 50;

interface FireRow {
  schedule: string;
  slot: string;
  kind: FireRecord['kind'];
  state: FireState;
  task_id: string | null;
  recorded_at: string;
  error: string | null;
  skipped: string | null;
}

const FIRE_COLUMNS = 'schedule, slot, kind, state, task_id, recorded_at, error, skipped';

function toFire(r: FireRow): FireRecord {
  return {
    slot: r.slot,
    state: r.state,
    kind: r.kind,
    task_id: r.task_id,
    recorded_at: r.recorded_at,
    ...(r.error !== null ? { error: r.error } : {}),
    ...(r.skipped !== null ? { skipped: JSON.parse(r.skipped) as NonNullable<FireRecord['skipped']> } : {}),
  };
}

function parse(name: string, text: string): ScheduleRecord {
  try {
    return JSON.parse(text) as ScheduleRecord;
  } catch (err) {
    throw new AtlasError('corrupt', `the record of schedule ${name} in the database is not valid JSON`, { details: { name }, cause: err });
  }
}

function notFound(name: string): AtlasError {
  return new AtlasError('not_found', `no schedule ${name}; 'atlas schedule list' lists them`, { details: { name } });
}

export class PgSchedules implements StoreSchedules {
  constructor(private readonly db: Db) {}

  async list(): Promise<ScheduleRecord[]> {
    const r = await this.db.query<{ name: string; record: string }>('list schedules', 'SELECT name, record FROM schedules ORDER BY name');
    const out: ScheduleRecord[] = [];
    for (const row of r.rows) {
      try {
        out.push(parse(row.name, row.record));
      } catch {
        // an unreadable record is not listed (as with the fs store)
      }
    }
    return out;
  }

  async get(name: string): Promise<ScheduleRecord> {
    assertName('schedule', name);
    const r = await this.db.query<{ record: string }>('read a schedule', 'SELECT record FROM schedules WHERE name = $1', [name]);
    if (!r.rows[0]) throw notFound(name);
    return parse(name, r.rows[0].record);
  }

  async create(record: ScheduleRecord): Promise<ScheduleRecord> {
    assertName('schedule', record.name);
    const r = await this.db.query('add a schedule', 'INSERT INTO schedules (name, record, cursor) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [record.name, JSON.stringify(record), record.cursor]);
    if (r.rowCount === 0) throw new AtlasError('already_exists', `schedule ${record.name} already exists; 'atlas schedule show ${record.name}' shows it`, { details: { name: record.name } });
    return record;
  }

  async update(name: string, mutate: (s: ScheduleRecord) => void): Promise<ScheduleRecord> {
    assertName('schedule', name);
    return this.db.tx('change a schedule', async (c) => {
      const s = await this.locked(c, name);
      if (!s) throw notFound(name);
      mutate(s);
      s.name = name;
      s.updated_at = new Date().toISOString();
      await c.query('UPDATE schedules SET record = $2, cursor = $3 WHERE name = $1', [name, JSON.stringify(s), s.cursor]);
      return s;
    });
  }

  async remove(name: string): Promise<void> {
    assertName('schedule', name);
    const r = await this.db.query('remove a schedule', 'DELETE FROM schedules WHERE name = $1', [name]);
    if (r.rowCount === 0) throw notFound(name);
  }

  async claim(name: string, from: string, to: string, fires: FireRecord[]): Promise<boolean> {
    return this.db.tx('record schedule fires', async (c) => {
      const s = await this.locked(c, name);
      if (!s || s.cursor !== from) return false;
      s.cursor = to;
      await c.query('UPDATE schedules SET record = $2, cursor = $3 WHERE name = $1', [name, JSON.stringify(s), to]);
      for (const f of fires) {
        await c.query(`INSERT INTO schedule_fires (${FIRE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
          name,
          f.slot,
          f.kind,
          f.state,
          f.task_id,
          f.recorded_at,
          f.error ?? null,
          f.skipped ? JSON.stringify(f.skipped) : null,
        ]);
      }
      await c.query(
        `DELETE FROM schedule_fires WHERE schedule = $1 AND state <> 'claimed'
           AND seq < (SELECT seq FROM schedule_fires WHERE schedule = $1 AND state <> 'claimed' ORDER BY seq DESC OFFSET $2 LIMIT 1)`,
        [name, KEEP_FIRES - 1],
      );
      return true;
    });
  }

  async settle(name: string, slot: string, patch: { state: FireState; error?: string; task_id?: string }, expectTaskId: string): Promise<boolean> {
    const r = await this.db.query(
      'settle a schedule fire',
      `UPDATE schedule_fires SET state = $3, task_id = COALESCE($4, task_id), error = COALESCE($5, error)
        WHERE schedule = $1 AND slot = $2 AND kind <> 'skipped' AND task_id = $6`,
      [name, slot, patch.state, patch.task_id ?? null, patch.error ?? null, expectTaskId],
    );
    return r.rowCount === 1;
  }

  async fires(name: string, limit: number): Promise<FireRecord[]> {
    await this.get(name);
    const r = await this.db.query<FireRow>('read schedule fires', `SELECT ${FIRE_COLUMNS} FROM schedule_fires WHERE schedule = $1 ORDER BY seq DESC LIMIT $2`, [name, limit]);
    return r.rows.map(toFire);
  }

  async openFires(): Promise<Array<{ schedule: string; fire: FireRecord }>> {
    const r = await this.db.query<FireRow>('read open schedule fires', `SELECT ${FIRE_COLUMNS} FROM schedule_fires WHERE state = 'claimed' ORDER BY seq`);
    return r.rows.map((row) => ({ schedule: row.schedule, fire: toFire(row) }));
  }

  /** The schedule, its row locked until the transaction ends; undefined when there is none. */
  private async locked(c: pg.PoolClient, name: string): Promise<ScheduleRecord | undefined> {
    const r = await c.query<{ record: string }>('SELECT record FROM schedules WHERE name = $1 FOR UPDATE', [name]);
    return r.rows[0] ? parse(name, r.rows[0].record) : undefined;
  }
}
