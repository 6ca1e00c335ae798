// Schedules in the filesystem store: one file per schedule, schedules/<name>.json, holding the
// definition and its fires ({schedule, fires}). Every change is one durable atomic rewrite of
// that file, made under an in-process lock per schedule (only the daemon that holds the home's
// lock writes here), so a claim (cursor moved + fires recorded) is all or nothing across a
// kill -9. Fires still open are always kept; of the settled ones the newest KEEP_FIRES stay.
import fsp from 'node:fs/promises';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { ensureDir, writeFileDurable } from './atomic.js';
import { assertName, isValidName } from './names.js';
import type { HomePaths } from './paths.js';
import type { FireRecord, FireState, ScheduleRecord, StoreSchedules } from './schedules.js';

const KEEP_FIRES = 50;

interface ScheduleFile {
  schedule: ScheduleRecord;
  /** Oldest first. */
  fires: FireRecord[];
}

export class FsSchedules implements StoreSchedules {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly paths: HomePaths) {}

  async list(): Promise<ScheduleRecord[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(this.paths.schedulesDir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter(isValidName).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError('list', this.paths.schedulesDir, err);
    }
    const out: ScheduleRecord[] = [];
    for (const n of names) {
      const f = await this.read(n).catch(() => undefined);
      if (f) out.push(f.schedule);
    }
    return out;
  }

  async get(name: string): Promise<ScheduleRecord> {
    return (await this.read(name)).schedule;
  }

  create(record: ScheduleRecord): Promise<ScheduleRecord> {
    return this.locked(record.name, async () => {
      await ensureDir(this.paths.schedulesDir);
      const existing = await this.read(record.name).catch((err: unknown) => (err instanceof AtlasError && err.code === 'not_found' ? undefined : Promise.reject(err)));
      if (existing) throw new AtlasError('already_exists', `schedule ${record.name} already exists; 'atlas schedule show ${record.name}' shows it`, { details: { name: record.name } });
      await this.write({ schedule: record, fires: [] });
      return record;
    });
  }

  update(name: string, mutate: (s: ScheduleRecord) => void): Promise<ScheduleRecord> {
    return this.locked(name, async () => {
      const f = await this.read(name);
      mutate(f.schedule);
      f.schedule.name = name;
      f.schedule.updated_at = new Date().toISOString();
      await this.write(f);
      return f.schedule;
    });
  }

  remove(name: string): Promise<void> {
    return this.locked(name, async () => {
      await this.read(name);
      try {
        await fsp.unlink(this.paths.scheduleFile(name));
      } catch (err) {
        throw storageError('remove', this.paths.scheduleFile(name), err);
      }
    });
  }

  claim(name: string, from: string, to: string, fires: FireRecord[]): Promise<boolean> {
    return this.locked(name, async () => {
      const f = await this.read(name).catch((err: unknown) => (err instanceof AtlasError && err.code === 'not_found' ? undefined : Promise.reject(err)));
      if (!f || f.schedule.cursor !== from) return false;
      f.schedule.cursor = to;
      f.fires.push(...fires);
      await this.write(f);
      return true;
    });
  }

  settle(name: string, slot: string, patch: { state: FireState; error?: string; task_id?: string }, expectTaskId: string): Promise<boolean> {
    return this.locked(name, async () => {
      const f = await this.read(name).catch((err: unknown) => (err instanceof AtlasError && err.code === 'not_found' ? undefined : Promise.reject(err)));
      const fire = f?.fires.find((x) => x.slot === slot && x.state !== 'skipped');
      if (!f || !fire || fire.task_id !== expectTaskId) return false;
      fire.state = patch.state;
      if (patch.task_id !== undefined) fire.task_id = patch.task_id;
      if (patch.error !== undefined) fire.error = patch.error;
      await this.write(f);
      return true;
    });
  }

  async fires(name: string, limit: number): Promise<FireRecord[]> {
    return (await this.read(name)).fires.slice(-limit).reverse();
  }

  async openFires(): Promise<Array<{ schedule: string; fire: FireRecord }>> {
    const out: Array<{ schedule: string; fire: FireRecord }> = [];
    for (const s of await this.list()) {
      const f = await this.read(s.name).catch(() => undefined);
      for (const fire of f?.fires ?? []) if (fire.state === 'claimed') out.push({ schedule: s.name, fire });
    }
    return out;
  }

  private async read(name: string): Promise<ScheduleFile> {
    const file = this.paths.scheduleFile(assertName('schedule', name));
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new AtlasError('not_found', `no schedule ${name}; 'atlas schedule list' lists them`, { details: { name } });
      throw storageError('read', file, err);
    }
    try {
      const f = JSON.parse(text) as ScheduleFile;
      if (typeof f?.schedule?.cron !== 'string' || !Array.isArray(f.fires)) throw new Error('not a schedule file');
      return f;
    } catch (err) {
      throw new AtlasError('corrupt', `${file} is not a valid schedule file; remove it and add the schedule again`, { details: { file }, cause: err });
    }
  }

  private async write(f: ScheduleFile): Promise<void> {
    const settled = f.fires.filter((x) => x.state !== 'claimed');
    const drop = new Set(settled.slice(0, Math.max(0, settled.length - KEEP_FIRES)));
    f.fires = f.fires.filter((x) => !drop.has(x));
    await writeFileDurable(this.paths.scheduleFile(f.schedule.name), JSON.stringify(f, null, 2) + '\n');
  }

  /** Runs `fn` after every earlier call for the same schedule has finished. */
  private locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(name, tail);
    void tail.then(() => {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    });
    return next;
  }
}
