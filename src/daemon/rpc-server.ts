// The socket server: frames lines, parses JSON-RPC 2.0, checks params against the method
// table and dispatches to handlers. Nothing a client sends can crash or hang it: every
// line is bounded (1 MiB), every failure becomes a JSON-RPC error, connections are capped,
// and a handler's exception is caught and reported as data, never as a stack trace.
// Nor can one client take the daemon's memory: a connection whose replies are not being
// read stops being read itself (backpressure), requests in flight per connection are
// bounded, and a connection whose unread output passes a cap is closed. Idle connections
// are closed after a while, and the idlest gives way when the cap is reached.
import net from 'node:net';
import type { Logger } from 'pino';
import { AtlasError, isAtlasError } from '../errors.js';
import { METHODS, isMethod, type Method, type NotificationMethod, type NotificationParams, type ParamsOf, type ResultOf } from '../protocol/methods.js';
import { MAX_CONNECTIONS, MAX_LINE_BYTES, RPC, rpcCodeFor, type RpcErrorObject, type RpcResponse } from '../protocol/protocol.js';

/** Requests a connection may have in flight before the daemon stops reading from it. */
export const MAX_IN_FLIGHT = 32;
/** Output a connection may leave unread before the daemon closes it. */
export const MAX_BUFFERED_OUTPUT = 32 * 1024 * 1024;
/** A connection with no request in flight and no stream open is closed after this long. */
export const IDLE_TIMEOUT_MS = 60_000;

/** One client connection, as a handler sees it: it can push notifications until it closes. */
export interface Connection {
  readonly closed: boolean;
  notify<N extends NotificationMethod>(method: N, params: NotificationParams[N]): void;
  /** Registers cleanup to run when the connection closes (a stream: the connection is not idle). */
  onClose(fn: () => void): void;
  /** Bytes written but not yet taken by the client (a slow reader lets this grow); 0 where unknown. */
  bufferedBytes?(): number;
  /** Resolves once the write buffer has drained (or the connection closed). */
  drained?(): Promise<void>;
  /** Ends the connection after what is already written. */
  end?(): void;
}

export type Handler<M extends Method> = (params: ParamsOf<M>, conn: Connection) => Promise<ResultOf<M>>;
export type Handlers = { [M in Method]: Handler<M> };

interface ConnState {
  socket: net.Socket;
  inFlight: number;
  streams: number;
  lastActive: number;
}

export class RpcServer {
  private readonly server: net.Server;
  private readonly sockets = new Map<net.Socket, ConnState>();

  constructor(
    private readonly handlers: Handlers,
    private readonly log: Logger,
    private readonly idleTimeoutMs = IDLE_TIMEOUT_MS,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      // umask 077 while the socket file is created, so it is never reachable by others.
      const old = process.umask(0o077);
      this.server.listen(socketPath, () => {
        process.umask(old);
        this.server.off('error', reject);
        this.server.on('error', (err) => this.log.error({ err }, 'socket server error'));
        resolve();
      });
    });
  }

  /** Stops accepting, and ends every open connection. */
  async close(): Promise<void> {
    for (const s of this.sockets.keys()) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Makes room for one more connection by closing the idlest one; false when none is idle. */
  private evictIdle(): boolean {
    let idlest: ConnState | undefined;
    for (const st of this.sockets.values()) {
      if (st.inFlight === 0 && st.streams === 0 && (!idlest || st.lastActive < idlest.lastActive)) idlest = st;
    }
    if (!idlest) return false;
    idlest.socket.destroy();
    this.sockets.delete(idlest.socket);
    return true;
  }

  private accept(socket: net.Socket): void {
    if (this.sockets.size >= MAX_CONNECTIONS && !this.evictIdle()) {
      socket.on('error', () => undefined);
      socket.end(JSON.stringify(errorResponse(null, RPC.UNAVAILABLE, `too many connections (${MAX_CONNECTIONS}), all busy; try again`, 'daemon_unreachable')) + '\n');
      return;
    }
    const st: ConnState = { socket, inFlight: 0, streams: 0, lastActive: Date.now() };
    this.sockets.set(socket, st);
    const cleanups: Array<() => void> = [];
    let closed = false;
    const conn: Connection = {
      get closed() {
        return closed;
      },
      notify: (method, params) => {
        if (!closed) write({ jsonrpc: '2.0', method, params });
      },
      onClose: (fn) => {
        if (closed) fn();
        else {
          st.streams++;
          cleanups.push(fn);
        }
      },
      bufferedBytes: () => socket.writableLength,
      drained: () =>
        new Promise<void>((resolve) => {
          if (closed || socket.writableLength === 0) return resolve();
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        }),
      end: () => {
        if (!closed) socket.end();
      },
    };
    // Reading pauses while replies wait to be read or too many requests are in flight.
    const flow = () => {
      if (closed) return;
      const backed = socket.writableNeedDrain || st.inFlight >= MAX_IN_FLIGHT;
      if (backed && !socket.isPaused()) socket.pause();
      else if (!backed && socket.isPaused()) socket.resume();
    };
    socket.on('drain', flow);
    const write = (msg: unknown) => {
      if (closed || socket.destroyed) return;
      socket.write(JSON.stringify(msg) + '\n');
      if (socket.writableLength > MAX_BUFFERED_OUTPUT) {
        this.log.warn({ buffered: socket.writableLength }, 'closing a connection that does not read its replies');
        socket.destroy();
        return;
      }
      flow();
    };
    socket.setTimeout(this.idleTimeoutMs, () => {
      if (st.inFlight === 0 && st.streams === 0 && Date.now() - st.lastActive >= this.idleTimeoutMs) socket.destroy();
    });
    let buffered: Buffer[] = [];
    let size = 0;
    let discarding = false;
    socket.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, i);
        start = i + 1;
        if (discarding) {
          discarding = false;
          buffered = [];
          size = 0;
          continue;
        }
        const line = size === 0 ? piece : Buffer.concat([...buffered, piece]);
        buffered = [];
        size = 0;
        if (line.length > MAX_LINE_BYTES) {
          write(errorResponse(null, RPC.INVALID_REQUEST, `request line too long (over ${MAX_LINE_BYTES} bytes)`, 'invalid_request'));
          continue;
        }
        st.inFlight++;
        st.lastActive = Date.now();
        void this.handleLine(line.toString('utf8'), conn).then((res) => {
          st.inFlight--;
          st.lastActive = Date.now();
          if (res) write(res);
          else flow();
        });
      }
      const rest = chunk.subarray(start);
      if (rest.length === 0 || discarding) return;
      size += rest.length;
      if (size > MAX_LINE_BYTES) {
        write(errorResponse(null, RPC.INVALID_REQUEST, `request line too long (over ${MAX_LINE_BYTES} bytes); discarding up to the next newline`, 'invalid_request'));
        discarding = true;
        buffered = [];
        size = 0;
        return;
      }
      buffered.push(Buffer.from(rest));
    });
    socket.on('data', flow);
    const finish = () => {
      if (closed) return;
      closed = true;
      this.sockets.delete(socket);
      socket.setTimeout(0);
      for (const fn of cleanups.splice(0)) {
        try {
          fn();
        } catch {
          // cleanup must never throw into the socket
        }
      }
    };
    socket.on('close', finish);
    socket.on('error', finish);
  }

  private async handleLine(text: string, conn: Connection): Promise<RpcResponse | undefined> {
    if (text.trim() === '') return undefined;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return errorResponse(null, RPC.PARSE_ERROR, 'parse error: the line is not valid JSON', 'parse_error');
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return errorResponse(null, RPC.INVALID_REQUEST, 'invalid request: expected one JSON-RPC 2.0 request object per line', 'invalid_request');
    }
    const req = msg as Record<string, unknown>;
    const rawId = req['id'];
    const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
    const isNotification = !('id' in req);
    if (req['jsonrpc'] !== '2.0' || typeof req['method'] !== 'string' || (rawId !== undefined && rawId !== null && id === null)) {
      return errorResponse(id, RPC.INVALID_REQUEST, "invalid request: needs jsonrpc: '2.0', a string method and a string or number id", 'invalid_request');
    }
    const method = req['method'];
    if (!isMethod(method)) {
      return isNotification ? undefined : errorResponse(id, RPC.METHOD_NOT_FOUND, `unknown method ${JSON.stringify(method).slice(0, 100)}`, 'unknown_method');
    }
    const parsed = parseParams(method, req['params']);
    if (!parsed.ok) {
      return errorResponse(id, RPC.INVALID_PARAMS, `invalid params for ${method}: ${parsed.problems.join('; ')}`, 'invalid_params', { problems: parsed.problems });
    }
    try {
      const result = await invoke(this.handlers, method, parsed.params, conn);
      return isNotification ? undefined : { jsonrpc: '2.0', id, result: result ?? null };
    } catch (err) {
      if (isAtlasError(err)) {
        if (err.code === 'internal' || err.code === 'storage') this.log.warn({ method, code: err.code, msg: err.message }, 'request failed');
        return isNotification ? undefined : errorResponse(id, rpcCodeFor(err.code), err.message, err.code, err.details);
      }
      this.log.error({ method, err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'handler threw');
      const e = new AtlasError('internal', `internal error in ${method}: ${(err as Error)?.message ?? String(err)}`);
      return isNotification ? undefined : errorResponse(id, RPC.INTERNAL, e.message, 'internal');
    }
  }

}

/** Checks raw params against the method's schema (the table's), naming each problem. */
export function parseParams<M extends Method>(method: M, raw: unknown): { ok: true; params: ParamsOf<M> } | { ok: false; problems: string[] } {
  const parsed = METHODS[method].params.safeParse(raw ?? {});
  if (parsed.success) return { ok: true, params: parsed.data as ParamsOf<M> };
  return { ok: false, problems: parsed.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`) };
}

/** Calls the handler of `method` with params parseParams has checked (socket and HTTP alike). */
export function invoke<M extends Method>(handlers: Handlers, method: M, params: ParamsOf<M>, conn: Connection): Promise<ResultOf<M>> {
  const handler: Handler<M> = handlers[method];
  return handler(params, conn);
}

function errorResponse(id: string | number | null, code: number, message: string, dataCode: NonNullable<RpcErrorObject['data']>['code'], details?: unknown): RpcResponse {
  const error: RpcErrorObject = { code, message, data: details === undefined ? { code: dataCode } : { code: dataCode, details } };
  return { jsonrpc: '2.0', id, error };
}
