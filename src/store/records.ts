// The records atlas keeps on disk (DESIGN §2). task.json holds a TaskRecord; these types
// are the contract other programs read, so every key is snake_case and every time is an
// ISO 8601 UTC string.

export const SCHEMA_VERSION = '1.0';

export const TASK_STATUSES = [
  'pending',
  'running',
  'awaiting_approval',
  'validation_failed',
  'failed',
  'gh_failed',
  'ci_failed',
  'ci_timeout',
  'interrupted',
  'completed',
  'rejected',
  'abandoned',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['completed', 'rejected', 'abandoned']);
/** Statuses a task can be resumed from (`atlas resume`): it stopped short and can run again. */
export const RESUMABLE_STATUSES = ['failed', 'validation_failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted'] as const satisfies readonly TaskStatus[];
export const isResumable = (s: TaskStatus): boolean => (RESUMABLE_STATUSES as readonly TaskStatus[]).includes(s);

export function isTaskStatus(s: unknown): s is TaskStatus {
  return typeof s === 'string' && (TASK_STATUSES as readonly string[]).includes(s);
}

/** A step's status; its changes are the step state machine's (step-states.ts). */
export type StepStatus = 'pending' | 'running' | 'waiting' | 'completed' | 'failed';

/** A step as the template defined it, copied into the task at start. */
export interface StepDefinition {
  name: string;
  type: string;
  [key: string]: unknown;
}

/** What recovery needs to find a step's leftover process tree. */
export interface StepProcess {
  pid: number;
  pgid: number;
  /** The process's start time as the kernel reports it (clock ticks since boot), so a reused pid is never mistaken for ours. */
  start_ticks: number | null;
  started_at: string;
  /** The attempt's files (relative to the task directory), for re-attaching after a restart. */
  run?: string;
  /** Which command of the step this process runs. */
  command_index?: number;
}

export interface StepState {
  name: string;
  type: string;
  status: StepStatus;
  attempts: number;
  started_at: string | null;
  completed_at: string | null;
  error: string | null;
  definition: StepDefinition;
  process: StepProcess | null;
  /** A wait or ci step's absolute deadline, so a restart never resets it. */
  deadline: string | null;
  /** Set while the step is being re-run from scratch after a retry backoff. */
  next_attempt_at: string | null;
  /** A durable wait that let go of its task until then (shared store): no daemon holds it meanwhile. */
  parked_until?: string;
}

export type AttemptStatus = 'completed' | 'failed' | 'timed_out' | 'canceled' | 'interrupted' | 'rejected';

export interface StepResult {
  step_index: number;
  step_name: string;
  attempt: number;
  status: AttemptStatus;
  started_at: string;
  completed_at: string;
  duration_ms: number;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
  artifacts: string[];
  files_changed: string[];
  output_bytes: number;
  output_truncated: boolean;
  commit?: string | null;
  /** CPU time (user + system, ms) of the attempt's process tree, where the OS reports it. */
  cpu_ms?: number | null;
  /** Peak resident memory (KB) of the attempt's process tree, where the OS reports it. */
  peak_rss_kb?: number | null;
}

export interface Transition {
  from_status: TaskStatus | null;
  to_status: TaskStatus;
  timestamp: string;
  reason: string;
}

/** One `atlas reject` of a human step, kept in order (issue 18 item 4). */
export interface Rejection {
  step: string;
  reason: string;
  /** The step the task ran again from, or null when the rejection ended it. */
  retry_from: string | null;
  at: string;
}

export interface TaskRecord {
  schema_version: string;
  id: string;
  workspace: string;
  template: string;
  description: string;
  inputs: Record<string, string>;
  status: TaskStatus;
  /** Index into steps[] of the step running or next to run; steps.length once all are done. */
  current_step: number;
  steps: StepState[];
  step_results: StepResult[];
  transitions: Transition[];
  priority: number;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  revision: number;
  error: string | null;
  /** The working directory of the workspace when the task was created. */
  workdir: string;
  /** Environment from the template and the step defaults. */
  env: Record<string, string>;
  /** Every rejection of a human step, oldest first (absent until the first). The newest
   *  reason reaches later steps as {{ review.reason }} and ATLAS_REJECT_REASON. */
  rejections?: Rejection[];
  /** Every task this one was started after (`--after`), in the order given (DESIGN §13). */
  after?: string[];
  /** The dependencies not completed yet: the task stays pending while this is not empty. */
  waiting_on?: string[];
  /** User labels (`-l key=value`), filterable in `atlas list`. */
  labels?: Record<string, string>;
  /** The schedule fire that created this task (`<schedule>@<slot>`), if any. */
  schedule_fire?: string;
}

export interface WorkspaceRecord {
  schema_version: string;
  name: string;
  path: string;
  kind: 'path' | 'worktree';
  repo: string | null;
  branch: string | null;
  created_at: string;
}

export interface TaskSummary {
  id: string;
  workspace: string;
  template: string;
  description: string;
  status: TaskStatus;
  current_step: number;
  current_step_name: string | null;
  steps_total: number;
  priority: number;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  error: string | null;
  /** Present only when not empty. */
  waiting_on?: string[];
  /** Present only when not empty. */
  labels?: Record<string, string>;
  /** Present only for tasks a schedule created. */
  schedule_fire?: string;
}

export function summarize(task: TaskRecord): TaskSummary {
  return {
    id: task.id,
    workspace: task.workspace,
    template: task.template,
    description: task.description,
    status: task.status,
    current_step: task.current_step,
    current_step_name: task.steps[task.current_step]?.name ?? null,
    steps_total: task.steps.length,
    priority: task.priority,
    created_at: task.created_at,
    updated_at: task.updated_at,
    completed_at: task.completed_at,
    error: task.error ?? null,
    ...(task.waiting_on?.length ? { waiting_on: task.waiting_on } : {}),
    ...(task.labels && Object.keys(task.labels).length ? { labels: task.labels } : {}),
    ...(task.schedule_fire ? { schedule_fire: task.schedule_fire } : {}),
  };
}

