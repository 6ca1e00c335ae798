// The control protocol (DESIGN §5): JSON-RPC 2.0, one JSON object per line, UTF-8, over a
// Unix socket. Methods are `<noun>.<verb>`; their params are checked against the schemas
// below by the daemon, and the client uses the same types. Errors carry a JSON-RPC code
// and, in `data`, atlas's stable string code and details.
import { z } from 'zod';
import type { ErrorCode } from '../errors.js';
import { TASK_STATUSES } from '../store/records.js';

export const MAX_LINE_BYTES = 1024 * 1024;
export const MAX_CONNECTIONS = 256;

export const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  NOT_FOUND: -32001,
  CONFLICT: -32002,
  VALIDATION: -32003,
  NOT_ALLOWED: -32004,
  STORAGE: -32005,
  UNAVAILABLE: -32006,
} as const;

/** The JSON-RPC code for an atlas error code. */
export function rpcCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'not_found':
      return RPC.NOT_FOUND;
    case 'conflict':
    case 'already_exists':
    case 'locked':
    case 'lease_lost':
      return RPC.CONFLICT;
    case 'invalid_name':
    case 'invalid_input':
    case 'template_invalid':
    case 'config_invalid':
      return RPC.VALIDATION;
    case 'not_allowed':
    case 'invalid_transition':
      return RPC.NOT_ALLOWED;
    case 'storage':
    case 'corrupt':
    case 'unsupported_schema':
      return RPC.STORAGE;
    case 'daemon_unreachable':
      return RPC.UNAVAILABLE;
    case 'internal':
      return RPC.INTERNAL;
    default: {
      const never: never = code;
      return never;
    }
  }
}

const id = z.string().min(1).max(200);
const name = z.string().min(1).max(200);
const status = z.enum(TASK_STATUSES);

export const PARAMS = {
  'daemon.ping': z.object({}).strict(),
  'daemon.status': z.object({}).strict(),
  'daemon.stop': z.object({ timeout_ms: z.number().int().min(0).max(3_600_000).optional() }).strict(),
  'task.start': z
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
  'task.get': z.object({ id }).strict(),
  'task.list': z
    .object({
      workspace: name.optional(),
      status: z.union([status, z.array(status)]).optional(),
      template: name.optional(),
      limit: z.number().int().min(1).max(1_000_000).optional(),
    })
    .strict(),
  'task.resume': z.object({ id }).strict(),
  'task.cancel': z.object({ id }).strict(),
  'task.approve': z.object({ id }).strict(),
  'task.reject': z.object({ id, reason: z.string().min(1).max(10_000), retry_from: name.optional() }).strict(),
  'task.delete': z.object({ id }).strict(),
  'task.wait': z.object({ id }).strict(),
  'task.logs': z.object({ id, step: name.optional(), follow: z.boolean().optional(), tail: z.number().int().min(1).max(1_000_000).optional() }).strict(),
  'task.artifacts': z.object({ id }).strict(),
  'task.artifact': z.object({ id, name }).strict(),
  'workspace.create': z
    .object({ name, path: z.string().min(1).max(4096).optional(), repo: z.string().min(1).max(4096).optional(), branch: z.string().min(1).max(255).optional() })
    .strict(),
  'workspace.list': z.object({}).strict(),
  'workspace.get': z.object({ name }).strict(),
  'workspace.remove': z.object({ name, purge: z.boolean().optional() }).strict(),
  'template.list': z.object({}).strict(),
  'template.get': z.object({ name }).strict(),
  'template.validate': z.object({ file: z.string().min(1).max(4096).optional(), text: z.string().max(1024 * 1024).optional(), name: z.string().max(4096).optional() }).strict(),
  'events.subscribe': z
    .object({ since: z.number().int().min(0).optional(), types: z.array(z.string().min(1).max(100)).max(50).optional(), task_id: id.optional() })
    .strict(),
  'events.list': z
    .object({
      since: z.number().int().min(0).optional(),
      types: z.array(z.string().min(1).max(100)).max(50).optional(),
      task_id: id.optional(),
      limit: z.number().int().min(1).max(10_000).optional(),
    })
    .strict(),
  'doctor.run': z.object({ repair: z.boolean().optional(), clear_quarantine: z.boolean().optional() }).strict(),
  'http.login': z.object({ listen: z.string().min(1).max(300).optional() }).strict(),
} as const;

export type Method = keyof typeof PARAMS;
export type ParamsOf<M extends Method> = z.input<(typeof PARAMS)[M]>;

export function isMethod(m: string): m is Method {
  return Object.prototype.hasOwnProperty.call(PARAMS, m);
}

export interface RpcRequest {
  jsonrpc: '2.0';
  id?: string | number | null;
  method: string;
  params?: unknown;
}

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { code: ErrorCode | 'parse_error' | 'invalid_request' | 'unknown_method' | 'invalid_params'; details?: unknown };
}

export interface RpcResponse {
  jsonrpc: '2.0';
  id: string | number | null;
  result?: unknown;
  error?: RpcErrorObject;
}

export interface RpcNotification {
  jsonrpc: '2.0';
  method: string;
  params: unknown;
}

/** Notification methods the daemon sends on streams. */
export const NOTIFY = {
  LOG: 'task.log',
  TASK: 'task.updated',
  END: 'stream.end',
  /** events.subscribe: one durable event. */
  EVENT: 'events.event',
  /** events.subscribe: the stream is cut off (a slow reader); params {code, message, last_seq}. */
  EVENT_ERROR: 'events.error',
} as const;
