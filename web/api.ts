// The dashboard's only way to the daemon: the JSON API and its Server-Sent Event streams,
// same origin, with the session cookie and (for anything that changes state) the session's
// CSRF token, fetched once from /api/session.
// The task types are the daemon's own (type-only: nothing of the daemon is bundled).
import type { StepResult, StepState, TaskRecord, TaskSummary as Summary } from '../src/store/records.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf: string | null = null;

export async function session(): Promise<void> {
  const r = await fetch('/api/session', { credentials: 'same-origin' });
  if (r.status === 401) throw new ApiError(401, 'unauthorized', "not logged in: run 'atlas dashboard' and open the URL it prints");
  csrf = ((await r.json()) as { csrf_token: string | null }).csrf_token;
}

async function result<T>(r: Response): Promise<T> {
  const body = (await r.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!r.ok) throw new ApiError(r.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${r.status}`);
  return body as T;
}

/** A read-only method, as GET. */
export async function get<T>(method: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return result<T>(await fetch(`/api/${method}${q.size ? `?${q}` : ''}`, { credentials: 'same-origin' }));
}

/** Any method, as POST with the CSRF token. */
export async function call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
  if (csrf === null) await session();
  return result<T>(
    await fetch(`/api/${method}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-atlas-csrf': csrf ?? '' },
      body: JSON.stringify(params),
    }),
  );
}

export function streamUrl(what: string, params: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return `/api/stream/${what}${q.size ? `?${q}` : ''}`;
}

/** Shows whether the live streams are connected (the dot in the header). */
export function setLive(state: 'live' | 'connecting' | 'off'): void {
  const dot = document.getElementById('conn');
  if (dot) {
    dot.className = `conn ${state}`;
    dot.title = state === 'live' ? 'live updates on' : state === 'connecting' ? 'reconnecting…' : 'not connected';
  }
}

export type { StepResult, StepState, TaskRecord };
/** A summary on the live feed; a deleted task comes as its id and `deleted: true`. */
export type TaskSummary = Summary & { deleted?: boolean };

export interface LogRecord {
  time?: string;
  event: string;
  step?: string;
  stream?: string;
  text?: string;
  [key: string]: unknown;
}
