// `retention:` in config.yaml (DESIGN §14): what the daemon prunes by itself, once shortly
// after it starts and then every `every` (a day by default). Live: a reload applies it.
//   retention:
//     older_than: 30d            # finished tasks whose last change is older than this
//     status: [completed, abandoned, rejected]   # default: the terminal statuses
//     delete: false              # true: delete instead of archiving (counted by the guard as one purge)
//     events_older_than: 90d     # whole events-log segments older than this are removed
//     every: 24h
import { z } from 'zod';
import { durationSchema, parseDuration } from '../templates/schema.js';
import { RESUMABLE_STATUSES, type TaskStatus } from '../store/records.js';

/** Statuses a prune may take: never a task that runs or waits (pending, running, awaiting_approval). */
export const PRUNABLE_STATUSES = ['completed', 'rejected', 'abandoned', ...RESUMABLE_STATUSES] as const satisfies readonly TaskStatus[];
export const DEFAULT_PRUNE_STATUSES: TaskStatus[] = ['completed', 'rejected', 'abandoned'];

export const retentionSchema = z
  .object({
    older_than: durationSchema.optional(),
    status: z.array(z.enum(PRUNABLE_STATUSES)).min(1).optional(),
    delete: z.boolean().optional(),
    events_older_than: durationSchema.optional(),
    every: durationSchema.optional(),
  })
  .strict();

export interface RetentionConfig {
  older_than_ms: number;
  statuses: TaskStatus[];
  delete: boolean;
  events_older_than_ms: number | null;
  every_ms: number;
}

const DAY = 86_400_000;

export function parseRetention(r: z.infer<typeof retentionSchema>): RetentionConfig {
  return {
    older_than_ms: r.older_than !== undefined ? (parseDuration(r.older_than) ?? 30 * DAY) : 30 * DAY,
    statuses: r.status ?? DEFAULT_PRUNE_STATUSES,
    delete: r.delete ?? false,
    events_older_than_ms: r.events_older_than !== undefined ? (parseDuration(r.events_older_than) ?? null) : null,
    every_ms: Math.max(60_000, r.every !== undefined ? (parseDuration(r.every) ?? DAY) : DAY),
  };
}
