// The method table (DESIGN §5): every JSON-RPC method with the schema its params are checked
// against and the type of its result. The daemon's handlers and the client are both typed
// from this one table, so a handler cannot return what the client does not expect and the
// client needs no casts. Adding a method is one entry here (and its handler).
import type { ReloadResult } from '../engine/reload.js';
import { z } from 'zod';
import type { LoginResult } from '../daemon/http-control.js';
import type { RunningTask } from '../daemon/running-tasks.js';
import type { BatchResult } from '../engine/batch.js';
import type { ScheduleDetail, ScheduleInfo } from '../engine/schedules.js';
import type { DoctorReport } from '../engine/doctor.js';
import type { AtlasEvent } from '../events/event.js';
import type { Delivery } from '../webhooks/dispatcher.js';
import type { WebhookInfo, WebhookTestResult } from '../webhooks/manager.js';
import type { QuarantineCleared } from '../engine/quarantine.js';
import type { RecoveryReport } from '../engine/recovery.js';
import type { RemoveResult } from '../engine/workspaces.js';
import type { ArtifactInfo } from '../store/artifacts.js';
import { NAME_RULE, TASK_ID_RULE } from '../store/names.js';
import { TASK_STATUSES, type TaskRecord, type TaskStatus, type TaskSummary, type WorkspaceRecord } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import type { QueryPage } from '../store/task-query.js';
import type { TemplateInfo, TemplateProblem } from '../templates/loader.js';
import type { Template } from '../templates/schema.js';
import type { DaemonRow } from '../store/pg/cluster-sql.js';
import type { BackupResult } from '../daemon/backup-handler.js';
import type { PruneResult } from '../engine/prune.js';
import type { MemoryEntry } from '../store/memory.js';

/** A phantom marker carrying a method's result type (it holds no value at run time). */
export interface Returns<R> {
  readonly __result?: R;
}
/** Declares the result type of a method: `result: returns<TaskRecord>()`. */
export function returns<R>(): Returns<R> {
  return {};
}

interface MethodSpec {
  params: z.ZodType;
  result: Returns<unknown>;
}

// Over-long names and ids get the name rule, not the schema's bare "<=200 characters".
const id = z.string().min(1).max(200, { message: `too long: ${TASK_ID_RULE}` });
const name = z.string().min(1).max(200, { message: `too long: ${NAME_RULE}` });
const status = z.enum(TASK_STATUSES);
const taskId = z.object({ id }).strict();
const none = z.object({}).strict();

// ---- result shapes that exist only on the wire --------------------------------------

export interface PingResult {
  version: string;
  pid: number;
}

export interface DaemonStatus {
  pid: number;
  version: string;
  home: string;
  socket: string;
  uptime_ms: number;
  state: string;
  tasks_total: number;
  tasks_by_status: Record<TaskStatus, number>;
  running_tasks: number;
  queue_depth: number;
  max_concurrent_tasks: number;
  memory: { rss_bytes: number; heap_used_bytes: number };
  /** The service manager that runs the daemon, or null when it was started by hand. */
  supervisor: 'systemd' | 'launchd' | null;
  running: RunningTask[];
  /** The store: files in the home, or a shared PostgreSQL database (then the daemons that share it). */
  store: 'fs' | 'postgres';
  store_server?: string;
  store_schema?: string;
  daemon_id?: string;
  daemons?: ClusterDaemon[];
  lease_takeovers?: number;
  leases_lost?: number;
}

/** A daemon of a shared store, as `daemon status` lists it (the row the store reads). */
export type ClusterDaemon = DaemonRow;

export interface LogsResult {
  id: string;
  task: TaskSummary;
  records: LogRecord[];
  skipped_lines: number;
  follow: boolean;
  /** Byte offset in the log just past the last record returned: pass it as `offset` for the next page. */
  next_offset: number;
  /** True when the log holds more records after `next_offset` (a page limit was reached). */
  more: boolean;
}

export interface ArtifactContent {
  name: string;
  size: number;
  encoding: 'utf8' | 'base64';
  content: string;
}

export interface WorkspaceDetail extends WorkspaceRecord {
  tasks_total: number;
  tasks_open: number;
  recent_tasks: TaskSummary[];
}

export type TemplateDetail = Template & { text: string | null };

export interface ValidateResult {
  valid: boolean;
  name?: string;
  steps?: Array<{ name: string; type: string }>;
  problems: TemplateProblem[];
  /** Things that are allowed but probably wrong (an input inside a second shell's string). */
  warnings?: string[];
  message?: string;
}

export interface DoctorResult extends DoctorReport {
  recovery_at_start: RecoveryReport | null;
  quarantine_cleared?: QuarantineCleared;
}

/** `atlas list` filters (DESIGN §13); since/until: ISO dates or durations back from now (7d). */
const taskQuery = z
  .object({
    workspace: name.optional(),
    status: z.union([status, z.array(status)]).optional(),
    template: name.optional(),
    limit: z.number().int().min(1).max(1_000_000).optional(),
    labels: z.record(z.string().max(64), z.string().max(256)).optional(),
    since: z.string().min(1).max(100).optional(),
    until: z.string().min(1).max(100).optional(),
    text: z.string().min(1).max(1000).optional(),
    cursor: z.string().min(1).max(400).optional(),
    /** List archived tasks instead of live ones (DESIGN §14). */
    archived: z.boolean().optional(),
  })
  .strict();

// ---- the table --------------------------------------------------------------------

export const METHODS = {
  'daemon.ping': { params: none, result: returns<PingResult>() },
  'daemon.status': { params: none, result: returns<DaemonStatus>() },
  'daemon.reload': { params: none, result: returns<ReloadResult>() },
  'daemon.stop': { params: z.object({ timeout_ms: z.number().int().min(0).max(3_600_000).optional(), detach: z.boolean().optional() }).strict(), result: returns<{ stopping: true; pid: number }>() },
  'task.start': {
    params: z
      .object({
        template: name.optional(),
        template_file: z.string().min(1).max(4096).optional(),
        workspace: name,
        inputs: z.record(z.string().max(200), z.string().max(256 * 1024)).optional(),
        description: z.string().max(10_000).optional(),
        priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
        /** The caller's environment for the task's steps (issue 18); absent: the daemon's own. */
        env: z.record(z.string().min(1).max(1024), z.string().max(128 * 1024)).optional(),
        after: z.array(id).max(100).optional(),
        labels: z.record(z.string().max(64), z.string().max(256)).optional(),
      })
      .strict()
      .refine((p) => p.template !== undefined || p.template_file !== undefined, { message: 'give template or template_file' }),
    result: returns<TaskRecord>(),
  },
  /** `warnings`: set when task.json was unreadable and had to be repaired (or read from its backup).
   *  `blocked_reason` (shared store): why no live daemon can run the task while it waits. */
  'task.get': { params: taskId, result: returns<TaskRecord & { warnings?: string[]; archived_at?: string; blocked_reason?: string }>() },
  /** A batch file (DESIGN §13): every task created, or none. `file` is read by the daemon. */
  'task.batch': {
    params: z
      .object({ file: z.string().min(1).max(4096).optional(), text: z.string().max(1024 * 1024).optional(), name: z.string().max(4096).optional() })
      .strict()
      .refine((p) => p.file !== undefined || p.text !== undefined, { message: 'give file or text' }),
    result: returns<BatchResult>(),
  },
  'task.list': { params: taskQuery, result: returns<TaskSummary[]>() },
  /** The same filters, one page with its total and the cursor of the next page (DESIGN §13). */
  'task.query': { params: taskQuery, result: returns<QueryPage>() },
  'task.resume': { params: taskId, result: returns<TaskRecord>() },
  'task.cancel': { params: taskId, result: returns<TaskRecord>() },
  'task.approve': { params: taskId, result: returns<TaskRecord>() },
  'task.reject': { params: z.object({ id, reason: z.string().min(1).max(10_000), retry_from: name.optional() }).strict(), result: returns<TaskRecord>() },
  'task.delete': { params: z.object({ id, force: z.boolean().optional() }).strict(), result: returns<{ deleted: string }>() },
  'task.wait': { params: taskId, result: returns<TaskRecord>() },
  'task.logs': {
    params: z
      .object({
        id,
        step: name.optional(),
        follow: z.boolean().optional(),
        tail: z.number().int().min(1).max(1_000_000).optional(),
        /** Byte offset to read from (a previous page's next_offset). */
        offset: z.number().int().min(0).optional(),
        /** At most this many records in the reply (default and maximum: LOG_PAGE_RECORDS). */
        limit: z.number().int().min(1).max(1_000_000).optional(),
      })
      .strict(),
    result: returns<LogsResult>(),
  },
  'task.artifacts': { params: taskId, result: returns<ArtifactInfo[]>() },
  'task.artifact': { params: z.object({ id, name }).strict(), result: returns<ArtifactContent>() },
  'workspace.create': {
    params: z
      .object({ name, path: z.string().min(1).max(4096).optional(), repo: z.string().min(1).max(4096).optional(), branch: z.string().min(1).max(255).optional() })
      .strict(),
    result: returns<WorkspaceRecord>(),
  },
  'workspace.list': { params: none, result: returns<WorkspaceRecord[]>() },
  'workspace.get': { params: z.object({ name }).strict(), result: returns<WorkspaceDetail>() },
  'workspace.remove': { params: z.object({ name, purge: z.boolean().optional(), force: z.boolean().optional() }).strict(), result: returns<RemoveResult>() },
  'template.list': { params: none, result: returns<TemplateInfo[]>() },
  'template.get': { params: z.object({ name }).strict(), result: returns<TemplateDetail>() },
  'template.validate': {
    params: z.object({ file: z.string().min(1).max(4096).optional(), text: z.string().max(1024 * 1024).optional(), name: z.string().max(4096).optional() }).strict(),
    result: returns<ValidateResult>(),
  },
  'events.subscribe': {
    params: z.object({ since: z.number().int().min(0).optional(), types: z.array(z.string().min(1).max(100)).max(50).optional(), task_id: id.optional() }).strict(),
    /** first_seq: the oldest seq the log still holds (older ones were pruned). */
    result: returns<{ subscribed: true; since: number; last_seq: number; first_seq: number }>(),
  },
  'webhook.list': { params: none, result: returns<WebhookInfo[]>() },
  'webhook.test': { params: z.object({ name }).strict(), result: returns<WebhookTestResult>() },
  'webhook.deliveries': { params: z.object({ name: name.optional(), failed: z.boolean().optional() }).strict(), result: returns<Array<Delivery & { webhook: string }>>() },
  'events.list': {
    params: z
      .object({
        since: z.number().int().min(0).optional(),
        types: z.array(z.string().min(1).max(100)).max(50).optional(),
        task_id: id.optional(),
        limit: z.number().int().min(1).max(10_000).optional(),
      })
      .strict(),
    result: returns<{ events: AtlasEvent[]; last_seq: number; next_since: number; first_seq: number }>(),
  },
  /** Schedules (DESIGN §13): a cron in a time zone that starts a template in a workspace. */
  'schedule.add': {
    params: z
      .object({
        name,
        cron: z.string().min(1).max(200),
        tz: z.string().min(1).max(100).optional(),
        template: name,
        workspace: name,
        inputs: z.record(z.string().max(200), z.string().max(256 * 1024)).optional(),
        description: z.string().max(10_000).optional(),
        missed: z.string().min(1).max(50).optional(),
      })
      .strict(),
    result: returns<ScheduleInfo>(),
  },
  'schedule.list': { params: none, result: returns<ScheduleInfo[]>() },
  'schedule.get': { params: z.object({ name }).strict(), result: returns<ScheduleDetail>() },
  'schedule.pause': { params: z.object({ name }).strict(), result: returns<ScheduleInfo>() },
  'schedule.resume': { params: z.object({ name }).strict(), result: returns<ScheduleInfo>() },
  'schedule.remove': { params: z.object({ name }).strict(), result: returns<{ removed: string }>() },
  'doctor.run': { params: z.object({ repair: z.boolean().optional(), clear_quarantine: z.boolean().optional() }).strict(), result: returns<DoctorResult>() },
  'http.login': { params: z.object({ listen: z.string().min(1).max(300).optional() }).strict(), result: returns<LoginResult>() },
  /** A snapshot of the home (DESIGN §14), streamed as backup.chunk notifications; the result comes last. */
  'backup.create': { params: none, result: returns<BackupResult>() },
  /** Archives (or with delete removes) finished tasks past their age (DESIGN §14). */
  'task.prune': {
    params: z
      .object({
        older_than: z.string().min(1).max(100).optional(),
        status: z.array(status).max(20).optional(),
        workspace: name.optional(),
        dry_run: z.boolean().optional(),
        delete: z.boolean().optional(),
        force: z.boolean().optional(),
      })
      .strict(),
    result: returns<PruneResult>(),
  },
  /** Brings an archived task back among the live ones. */
  'task.unarchive': { params: taskId, result: returns<TaskRecord>() },
  /** Workspace memory (DESIGN §14); sizes and kinds are checked by the daemon, with the reason. */
  'memory.add': { params: z.object({ workspace: name, text: z.string().max(1024 * 1024), kind: z.string().max(100).optional() }).strict(), result: returns<MemoryEntry>() },
  'memory.list': { params: z.object({ workspace: name }).strict(), result: returns<MemoryEntry[]>() },
  'memory.search': { params: z.object({ workspace: name, query: z.string().max(1000) }).strict(), result: returns<MemoryEntry[]>() },
  'memory.remove': { params: z.object({ workspace: name, id: z.string().min(1).max(100) }).strict(), result: returns<MemoryEntry>() },
} as const satisfies Record<string, MethodSpec>;

export type Method = keyof typeof METHODS;
/** What a caller sends (defaults not yet applied). */
export type ParamsIn<M extends Method> = z.input<(typeof METHODS)[M]['params']>;
/** What a handler receives (checked by the schema). */
export type ParamsOf<M extends Method> = z.output<(typeof METHODS)[M]['params']>;
export type ResultOf<M extends Method> = (typeof METHODS)[M]['result'] extends Returns<infer R> ? R : never;

export function isMethod(m: string): m is Method {
  return Object.prototype.hasOwnProperty.call(METHODS, m);
}

// ---- notifications the daemon pushes on streams ----------------------------------

export const NOTIFY = {
  LOG: 'task.log',
  TASK: 'task.updated',
  END: 'stream.end',
  /** events.subscribe: one durable event. */
  EVENT: 'events.event',
  /** events.subscribe: the stream is cut off (a slow reader); params {code, message, last_seq}. */
  EVENT_ERROR: 'events.error',
  /** backup.create: the next bytes of the compressed snapshot, base64. */
  BACKUP_CHUNK: 'backup.chunk',
} as const;

export interface NotificationParams {
  'task.log': { id: string; record: LogRecord };
  'task.updated': { task: TaskSummary };
  'stream.end': { id: string };
  'events.event': { event: AtlasEvent };
  'events.error': { code: string; message: string; last_seq: number };
  'backup.chunk': { data: string };
}
export type NotificationMethod = keyof NotificationParams;
/** A notification as the client receives it, discriminated by method. */
export type Notification = { [N in NotificationMethod]: { jsonrpc: '2.0'; method: N; params: NotificationParams[N] } }[NotificationMethod];
