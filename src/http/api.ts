// The JSON API under /api/: the socket's methods, over HTTP, served by the daemon's own
// handlers (the same param schemas, the same engine calls, the same errors):
//   GET  /api/<method>?key=value   read-only methods (task.get, task.list, daemon.status, ...)
//   POST /api/<method>  {params}    every method but the streams (needs the CSRF token with a cookie)
//   GET  /api/stream/task.logs?id=…&step=…&tail=N    the log as Server-Sent Events, then live
//   GET  /api/stream/events.subscribe?task_id=…      events as Server-Sent Events
//   GET  /api/stream/tasks?status=…&workspace=…&template=…&text=…   the live task list
//   GET  /api/artifact?id=…&name=…[&download=1]      an artifact, as text/plain or a download
// Errors are JSON `{error: {code, message, details}}` with an HTTP status that fits the code.
import type http from 'node:http';
import { AtlasError, isAtlasError } from '../errors.js';
import { invoke, parseParams, type Connection, type Handlers } from '../daemon/rpc-server.js';
import { isMethod, type Method, type ParamsOf, type ResultOf } from '../protocol/methods.js';
import type { TaskSummary } from '../store/records.js';
import { SANDBOX_CSP, securityHeaders } from './guard.js';
import { SseStream } from './sse.js';
import { serveTaskFeed, type FeedSource } from './task-feed.js';

/** Methods that change nothing, so GET may call them. */
const READ_ONLY: ReadonlySet<Method> = new Set<Method>(['daemon.ping', 'daemon.status', 'task.get', 'task.list', 'task.wait', 'task.logs', 'task.artifacts', 'task.artifact', 'workspace.list', 'workspace.get', 'template.list', 'template.get', 'template.validate', 'events.list', 'schedule.list', 'schedule.get', 'memory.list', 'memory.search']);
/** Methods that only make sense as a stream. */
const STREAM_ONLY: ReadonlySet<string> = new Set(['events.subscribe']);
const NUMBER_KEYS = new Set(['limit', 'tail', 'priority', 'timeout_ms', 'since']);
const BOOLEAN_KEYS = new Set(['follow', 'purge', 'repair']);
/** Keys that are always lists, even when given once. */
const ARRAY_KEYS = new Set(['types']);
const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiContext {
  /** The daemon's handlers; undefined until recovery has finished. */
  handlers(): Handlers | undefined;
  counts(): Record<string, number>;
  /** The newest event seq. */
  lastSeq(): number;
  /** A task's summary as it stands, or undefined when it is gone. */
  summary(id: string): Promise<TaskSummary | undefined>;
}

export function httpStatusFor(code: string): number {
  switch (code) {
    case 'not_found':
      return 404;
    case 'conflict':
    case 'already_exists':
    case 'locked':
    case 'not_allowed':
    case 'invalid_transition':
      return 409;
    case 'daemon_unreachable':
      return 503;
    case 'internal':
    case 'storage':
    case 'corrupt':
    case 'unsupported_schema':
      return 500;
    default:
      return 400;
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: http.ServerResponse, status: number, code: string, message: string, details?: unknown): void {
  sendJson(res, status, { error: { code, message, ...(details === undefined ? {} : { details }) } });
}

function sendCaught(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (isAtlasError(err)) sendError(res, httpStatusFor(err.code), err.code, err.message, err.details);
  else sendError(res, 500, 'internal', `internal error: ${(err as Error)?.message ?? String(err)}`);
}

/** Query parameters as method params: repeated keys become arrays, known numeric and boolean keys are converted. */
export function queryParams(url: URL): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values: unknown[] = url.searchParams.getAll(key).map((v) => (NUMBER_KEYS.has(key) && /^-?\d+$/.test(v) ? Number(v) : BOOLEAN_KEYS.has(key) && (v === 'true' || v === 'false') ? v === 'true' : v));
    out[key] = values.length === 1 && !ARRAY_KEYS.has(key) ? values[0] : values;
  }
  return out;
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new AtlasError('invalid_input', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new AtlasError('invalid_input', 'the request body is not valid JSON');
  }
}

/** The daemon's handlers once recovery has finished; an error a client can retry before. */
function ready(ctx: ApiContext): Handlers {
  const handlers = ctx.handlers();
  if (!handlers) throw new AtlasError('daemon_unreachable', 'the daemon is still recovering; try again in a moment', { retryable: true });
  return handlers;
}

/** Params checked against the method's schema (the socket's own), or an invalid_input error naming each problem. */
function validated<M extends Method>(method: M, params: unknown): ParamsOf<M> {
  const parsed = parseParams(method, params);
  if (parsed.ok) return parsed.params;
  throw new AtlasError('invalid_input', `invalid params for ${method}: ${parsed.problems.join('; ')}`, { details: { problems: parsed.problems } });
}

async function call<M extends Method>(ctx: ApiContext, method: M, params: unknown, conn: Connection): Promise<ResultOf<M>> {
  return invoke(ready(ctx), method, validated(method, params), conn);
}

/** A connection for a plain request: it closes when the client goes away (task.wait stops waiting). */
function requestConnection(req: http.IncomingMessage, res: http.ServerResponse): Connection {
  let closed = false;
  const fns: Array<() => void> = [];
  const finish = () => {
    if (closed) return;
    closed = true;
    for (const fn of fns.splice(0)) fn();
  };
  res.on('close', finish);
  req.on('error', finish);
  return {
    get closed() {
      return closed;
    },
    notify: () => undefined,
    onClose: (fn) => (closed ? fn() : fns.push(fn)),
    drained: () => Promise.resolve(),
  };
}

export async function serveApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, ctx: ApiContext): Promise<void> {
  const rest = url.pathname.slice('/api/'.length);
  try {
    if (rest.startsWith('stream/')) {
      if (req.method !== 'GET') return sendError(res, 405, 'method_not_allowed', 'streams are GET requests');
      return await serveStream(req, res, rest.slice('stream/'.length), url, ctx);
    }
    if (rest === 'artifact') {
      if (req.method !== 'GET') return sendError(res, 405, 'method_not_allowed', 'artifacts are GET requests');
      return await serveArtifact(res, url, ctx);
    }
    if (!isMethod(rest) || STREAM_ONLY.has(rest)) return sendError(res, 404, 'unknown_method', `no API method ${JSON.stringify(rest).slice(0, 100)}; methods are the socket's (task.list, task.get, task.approve, ...)`);
    let params: unknown;
    if (req.method === 'GET') {
      if (!READ_ONLY.has(rest)) return sendError(res, 405, 'method_not_allowed', `${rest} changes state: use POST`);
      params = queryParams(url);
      if (rest === 'task.logs' && (params as { follow?: unknown }).follow) return sendError(res, 400, 'invalid_input', 'to follow a log use /api/stream/task.logs');
    } else if (req.method === 'POST') {
      params = await readBody(req);
      if (rest === 'task.logs' && (params as { follow?: unknown } | null)?.follow) return sendError(res, 400, 'invalid_input', 'to follow a log use /api/stream/task.logs');
    } else {
      return sendError(res, 405, 'method_not_allowed', 'use GET or POST');
    }
    const result = await call(ctx, rest, params, requestConnection(req, res));
    sendJson(res, 200, result ?? null);
  } catch (err) {
    sendCaught(res, err);
  }
}

async function serveStream(req: http.IncomingMessage, res: http.ServerResponse, what: string, url: URL, ctx: ApiContext): Promise<void> {
  const params = queryParams(url);
  if (what === 'tasks') {
    const text = typeof params['text'] === 'string' ? params['text'].toLowerCase() : '';
    delete params['text'];
    const filter = { limit: 500, ...params };
    // Checked before the stream opens, so a bad filter or a recovering daemon is a plain JSON error.
    validated('task.list', filter);
    ready(ctx);
    const sse = new SseStream(req, res);
    const lastId = req.headers['last-event-id'];
    const source: FeedSource = {
      lastSeq: () => ctx.lastSeq(),
      subscribe: (since, conn) => call(ctx, 'events.subscribe', { since }, conn),
      summary: (id) => ctx.summary(id),
      counts: () => ctx.counts(),
    };
    const snapshot = async () => {
      let tasks = await call(ctx, 'task.list', text ? { ...filter, limit: 1_000_000 } : filter, sse.connection());
      if (text) tasks = tasks.filter((t) => `${t.id} ${t.description} ${t.template} ${t.workspace}`.toLowerCase().includes(text)).slice(0, filter.limit as number);
      return { tasks, counts: ctx.counts() };
    };
    await serveTaskFeed(sse, typeof lastId === 'string' ? lastId : undefined, snapshot, source);
    return;
  }
  if (what !== 'task.logs' && what !== 'events.subscribe') return sendError(res, 404, 'unknown_stream', `no stream ${JSON.stringify(what).slice(0, 100)}; streams are task.logs, events.subscribe and tasks`);
  const p = what === 'task.logs' ? { tail: 2000, ...params, follow: true } : params;
  // Checked first: a bad request is a plain JSON error, not a stream that ends at once.
  const params2 = validated(what, p);
  const handlers = ready(ctx);
  const sse = new SseStream(req, res);
  const conn = sse.connection();
  const sseOnEnd: Connection = {
    get closed() {
      return conn.closed;
    },
    notify: (method, data) => {
      conn.notify(method, data);
      if (method === 'stream.end') sse.close();
    },
    onClose: (fn) => conn.onClose(fn),
    drained: () => conn.drained?.() ?? Promise.resolve(),
  };
  try {
    const result = await invoke(handlers, what, params2, sseOnEnd);
    sse.send('result', result);
  } catch (err) {
    sse.send('error', isAtlasError(err) ? { code: err.code, message: err.message } : { code: 'internal', message: (err as Error)?.message });
    sse.close();
  }
}

async function serveArtifact(res: http.ServerResponse, url: URL, ctx: ApiContext): Promise<void> {
  const id = url.searchParams.get('id') ?? '';
  const name = url.searchParams.get('name') ?? '';
  const download = url.searchParams.get('download') === '1';
  const a = await call(ctx, 'task.artifact', { id, name }, { closed: false, notify: () => undefined, onClose: () => undefined, drained: () => Promise.resolve() });
  const body = a.encoding === 'utf8' ? Buffer.from(a.content, 'utf8') : Buffer.from(a.content, 'base64');
  // Never HTML of our origin: text/plain (or a download), no sniffing, and a sandbox if a browser renders it anyway.
  securityHeaders(res, SANDBOX_CSP);
  const asText = a.encoding === 'utf8' && !download;
  res.writeHead(200, {
    'Content-Type': asText ? 'text/plain; charset=utf-8' : 'application/octet-stream',
    'Content-Length': body.length,
    'Content-Disposition': `${asText ? 'inline' : 'attachment'}; filename="${a.name.replace(/[^a-z0-9._-]/g, '_')}"`,
  });
  res.end(body);
}
