// The control protocol (DESIGN §5): JSON-RPC 2.0, one JSON object per line, UTF-8, over a
// Unix socket. Methods are `<noun>.<verb>`, listed with their params and results in
// methods.ts; this file holds the framing: codes, message shapes, limits. Errors carry a
// JSON-RPC code and, in `data`, atlas's stable string code and details.
import type { ErrorCode } from '../errors.js';

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

export { NOTIFY, isMethod, type Method, type ParamsOf, type ResultOf } from './methods.js';
