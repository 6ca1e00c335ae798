// The socket server: frames lines, parses JSON-RPC 2.0, checks params against the shared
// schemas and dispatches to handlers. Nothing a client sends can crash or hang it: every
// line is bounded (1 MiB), every failure becomes a JSON-RPC error, connections are capped,
// and a handler's exception is caught and reported as data, never as a stack trace.
import net from 'node:net';
import type { Logger } from 'pino';
import { AtlasError, isAtlasError } from '../errors.js';
import { MAX_CONNECTIONS, MAX_LINE_BYTES, PARAMS, RPC, isMethod, rpcCodeFor, type Method, type RpcErrorObject, type RpcResponse } from '../protocol/protocol.js';

/** One client connection, as a handler sees it: it can push notifications until it closes. */
export interface Connection {
  readonly closed: boolean;
  notify(method: string, params: unknown): void;
  /** Registers cleanup to run when the connection closes. */
  onClose(fn: () => void): void;
  /** Bytes written but not yet taken by the client (a slow reader lets this grow); 0 where unknown. */
  bufferedBytes?(): number;
  /** Resolves once the write buffer has drained (or the connection closed). */
  drained?(): Promise<void>;
  /** Ends the connection after what is already written. */
  end?(): void;
}

export type Handler = (params: never, conn: Connection) => Promise<unknown>;
export type Handlers = { [M in Method]: (params: unknown, conn: Connection) => Promise<unknown> };

export class RpcServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly handlers: Handlers,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.maxConnections = MAX_CONNECTIONS;
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
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
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
        else cleanups.push(fn);
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
    const write = (msg: unknown) => {
      if (closed || socket.destroyed) return;
      socket.write(JSON.stringify(msg) + '\n');
    };
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
        void this.handleLine(line.toString('utf8'), conn).then((res) => res && write(res));
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
    const finish = () => {
      if (closed) return;
      closed = true;
      this.sockets.delete(socket);
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
    const parsed = PARAMS[method].safeParse(req['params'] ?? {});
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`);
      return errorResponse(id, RPC.INVALID_PARAMS, `invalid params for ${method}: ${problems.join('; ')}`, 'invalid_params', { problems });
    }
    try {
      const result = await this.handlers[method](parsed.data, conn);
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

function errorResponse(id: string | number | null, code: number, message: string, dataCode: NonNullable<RpcErrorObject['data']>['code'], details?: unknown): RpcResponse {
  const error: RpcErrorObject = { code, message, data: details === undefined ? { code: dataCode } : { code: dataCode, details } };
  return { jsonrpc: '2.0', id, error };
}
