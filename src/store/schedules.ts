// Schedules as the store keeps them (DESIGN §13): a cron definition, a cursor, and the fires.
//
// The exactly-once protocol every backend keeps: a pass that finds slots due moves the
// cursor and records their fires in ONE atomic, durable write (`claim`), and only if the
// cursor is still the one the pass started from; a second pass (a restart, another daemon
// sharing the database) that started from the same cursor loses and records nothing. Each
// fire carries the id its task will have; the task is created only after the claim returned,
// and the fire is then settled ('created'). A fire still 'claimed' after a crash is finished
// by recovery: the task is created under the recorded id, unless it already exists.

/** What happens to slots that passed while no daemon ran. */
export type MissedPolicy = 'skip' | 'run-once';
export const MISSED_POLICIES: readonly MissedPolicy[] = ['skip', 'run-once'];

export interface ScheduleRecord {
  schema_version: string;
  name: string;
  cron: string;
  /** IANA time zone the cron is read in. */
  tz: string;
  template: string;
  workspace: string;
  inputs: Record<string, string>;
  description: string | null;
  missed: MissedPolicy;
  paused: boolean;
  /** Every slot up to this instant is decided (fired or skipped); the next fire comes after it. */
  cursor: string;
  created_at: string;
  updated_at: string;
}

export type FireState = 'claimed' | 'created' | 'failed' | 'skipped';

export interface FireRecord {
  /** The slot (ISO 8601 UTC); for a 'skipped' record, the latest slot skipped. */
  slot: string;
  state: FireState;
  /** 'on_time', or 'catch_up' (run-once after missed slots), or 'skipped'. */
  kind: 'on_time' | 'catch_up' | 'skipped';
  /** The task this fire creates (null for skipped slots). */
  task_id: string | null;
  recorded_at: string;
  /** Why the task could not be created ('failed'), or how many slots were skipped. */
  error?: string;
  skipped?: { count: number; at_least: boolean; first: string };
}

/** The key a fire's task carries as `schedule_fire`. */
export function fireKey(schedule: string, slot: string): string {
  return `${schedule}@${slot}`;
}

export interface StoreSchedules {
  list(): Promise<ScheduleRecord[]>;
  /** `not_found` when there is no such schedule. */
  get(name: string): Promise<ScheduleRecord>;
  /** `already_exists` when the name is taken. */
  create(record: ScheduleRecord): Promise<ScheduleRecord>;
  /** Read-modify-write of the definition (pause, resume); never of its fires. */
  update(name: string, mutate: (s: ScheduleRecord) => void): Promise<ScheduleRecord>;
  /** Removes the schedule and its fire history (tasks it created stay). */
  remove(name: string): Promise<void>;
  /** Atomically and durably: when the cursor is still `from`, moves it to `to` and records
   *  `fires`; false (nothing written) when another pass moved it first. */
  claim(name: string, from: string, to: string, fires: FireRecord[]): Promise<boolean>;
  /** Settles a claimed fire; `task_id` (when given) must still be the fire's own (else false). */
  settle(name: string, slot: string, patch: { state: FireState; error?: string; task_id?: string }, expectTaskId: string): Promise<boolean>;
  /** The newest fires first (skipped records included). */
  fires(name: string, limit: number): Promise<FireRecord[]>;
  /** Fires still 'claimed' (their task may not exist yet), of every schedule. */
  openFires(): Promise<Array<{ schedule: string; fire: FireRecord }>>;
}
