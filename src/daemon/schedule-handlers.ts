// The daemon's schedule methods (DESIGN §13), kept apart from handlers.ts, which spreads them in.
import type { Schedules } from '../engine/schedules.js';
import { assertInputSizes } from '../engine/input-limits.js';
import type { Handlers } from './rpc-server.js';

type ScheduleMethod = 'schedule.add' | 'schedule.list' | 'schedule.get' | 'schedule.pause' | 'schedule.resume' | 'schedule.remove';

export function scheduleHandlers(schedules: Schedules): Pick<Handlers, ScheduleMethod> {
  return {
    'schedule.add': async (p) => {
      assertInputSizes(p.inputs ?? {});
      return schedules.add(p);
    },
    'schedule.list': async () => schedules.list(),
    'schedule.get': async ({ name }) => schedules.show(name),
    'schedule.pause': async ({ name }) => schedules.pause(name),
    'schedule.resume': async ({ name }) => schedules.resume(name),
    'schedule.remove': async ({ name }) => schedules.remove(name),
  };
}
