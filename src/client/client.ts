// The socket client the CLI and the tests use: JSON-RPC 2.0 over the home's control socket,
// one object per line. Calls resolve with the result or reject with a ClientError that
// carries atlas's stable error code; notifications go to the listener given to `connect`.
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AtlasError, errnoCode, type ErrorCode } from '../errors.js';
import type { Method, Notification, ParamsIn, ResultOf } from '../protocol/methods.js';
import type { RpcNotification, RpcResponse } from '../protocol/protocol.js';
import { socketPathFor } from '../protocol/socket-path.js';
import { assertTrustedSocket } from '../protocol/socket-trust.js';
import { packageRoot } from '../util/package-root.js';

export class ClientError extends Error {
  constructor(
    readonly code: ErrorCode | 'parse_error' | 'invalid_request' | 'unknown_method' | 'invalid_params',
    message: string,
    readonly rpcCode: number,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class AtlasClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';
  private closedError: Error | undefined;
  private resolveClosed!: () => void;
  /** Resolves when the connection has closed, from either end. */
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));

  private constructor(
    private readonly socket: net.Socket,
    private readonly socketPath: string,
    private readonly onNotify?: (n: Notification) => void,
    private readonly onClose?: () => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    const closed = (err?: Error) => {
      this.closedError ??= err ?? new AtlasError('daemon_unreachable', 'the daemon closed the connection');
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
      this.resolveClosed();
      this.onClose?.();
    };
    socket.on('close', () => closed());
    socket.on('error', (err) => closed(unreachable(this.socketPath, err)));
  }

  /** Connects to the daemon of `home`. Rejects with a daemon_unreachable AtlasError. */
  static connect(home: string, options: { onNotify?: (n: Notification) => void; onClose?: () => void; timeoutMs?: number } = {}): Promise<AtlasClient> {
    const socketPath = socketPathFor(home);
    try {
      assertTrustedSocket(socketPath, home);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new AtlasError('daemon_unreachable', `the daemon did not answer on ${socketPath}`));
      }, options.timeoutMs ?? 5000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new AtlasClient(socket, socketPath, options.onNotify, options.onClose));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(unreachable(socketPath, err));
      });
    });
  }

  /** Calls `method`; resolves with its result as the method table types it. */
  call<M extends Method>(method: M, ...params: {} extends ParamsIn<M> ? [params?: ParamsIn<M>] : [params: ParamsIn<M>]): Promise<ResultOf<M>> {
    return this.request(method, params[0] ?? {}) as Promise<ResultOf<M>>;
  }

  /** Calls a method by name with any params (protocol tests send what the table forbids). */
  request(method: string, params: unknown = {}): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: RpcResponse & Partial<RpcNotification>;
      try {
        msg = JSON.parse(line) as RpcResponse & Partial<RpcNotification>;
      } catch {
        continue;
      }
      if (msg.method !== undefined && msg.id === undefined) {
        this.onNotify?.(msg as RpcNotification as Notification);
        continue;
      }
      const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
      if (!p) continue;
      this.pending.delete(msg.id as number);
      if (msg.error) p.reject(new ClientError(msg.error.data?.code ?? 'internal', msg.error.message, msg.error.code, msg.error.data?.details));
      else p.resolve(msg.result);
    }
  }
}

function unreachable(socketPath: string, err: unknown): AtlasError {
  const code = errnoCode(err);
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? `permission denied on ${socketPath}: the daemon runs as another user, or the socket's mode was changed`
      : code === 'ENOENT' || code === 'ECONNREFUSED'
        ? `the daemon is not running (no socket at ${socketPath}); start it with 'atlas daemon start'`
        : `cannot reach the daemon at ${socketPath}: ${code ?? (err as Error)?.message}`;
  return new AtlasError('daemon_unreachable', why, { cause: err, details: { socket: socketPath, errno: code } });
}

/** True when the daemon could not be reached because this user may not open its socket (it runs, as someone else). */
export function isPermissionDenied(err: unknown): boolean {
  const errno = err instanceof AtlasError ? (err.details as { errno?: string } | undefined)?.errno : undefined;
  return errno === 'EACCES' || errno === 'EPERM';
}

/** True when the socket or its directory was refused as not this user's own (socket-trust.ts). */
export function isUntrusted(err: unknown): boolean {
  return err instanceof AtlasError && (err.details as { errno?: string } | undefined)?.errno === 'EUNTRUSTED';
}

/** The CLI entry point. */
export const CLI_MAIN = path.resolve(fileURLToPath(new URL('../cli/main.js', import.meta.url)));
/** The daemon's own entry point (no CLI parser loaded): the single-file bundle the build
 *  makes (it starts in about half the time), else the plain module. */
export const DAEMON_MAIN = ((): string => {
  const bundle = path.join(packageRoot(), 'dist', 'daemon.mjs');
  return fs.existsSync(bundle) ? bundle : path.resolve(fileURLToPath(new URL('../daemon/main.js', import.meta.url)));
})();
/** V8 settings for the daemon: a small young generation keeps a long-lived process's memory low. */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=2'];

/** A daemon started by hand is nobody's service: the markers a service manager set for the
 *  shell that starts it (a terminal that runs as a systemd unit) must not make it look owned. */
function handStartedEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ATLAS_HOME: home };
  delete env['INVOCATION_ID'];
  delete env['XPC_SERVICE_NAME'];
  return env;
}

/**
 * Starts a detached daemon for `home` and resolves once it answers a ping, with its pid.
 * If one is already running, resolves with that one's pid and `alreadyRunning`.
 */
export async function startDaemon(home: string, options: { timeoutMs?: number } = {}): Promise<{ pid: number; alreadyRunning: boolean; version: string }> {
  try {
    const c = await AtlasClient.connect(home, { timeoutMs: 1000 });
    try {
      const r = await c.call('daemon.ping');
      return { pid: r.pid, alreadyRunning: true, version: r.version };
    } finally {
      c.close();
    }
  } catch (err) {
    // A socket we may not open belongs to a running daemon: starting another cannot help.
    if (!(err instanceof AtlasError && err.code === 'daemon_unreachable') || isPermissionDenied(err) || isUntrusted(err)) throw err;
  }
  let stderr = '';
  let exited: number | null | undefined;
  let exitedAt = 0;
  const children: ChildProcess[] = [];
  const launch = () => {
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_MAIN, '--home', home, '--quiet'], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: handStartedEnv(home),
    });
    children.push(child);
    exited = undefined;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.once('exit', (code) => {
      exited = code;
      exitedAt = Date.now();
    });
  };
  launch();
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  try {
    for (;;) {
      try {
        const c = await AtlasClient.connect(home, { timeoutMs: 1000 });
        try {
          const r = await c.call('daemon.ping');
          return { pid: r.pid, alreadyRunning: !children.some((ch) => ch.pid === r.pid), version: r.version };
        } finally {
          c.close();
        }
      } catch (err) {
        if (!(err instanceof AtlasError && err.code === 'daemon_unreachable')) throw err;
      }
      if (exited !== undefined) {
        if (exited !== 0) throw new AtlasError('daemon_unreachable', `the daemon failed to start (exit ${exited}): ${stderr.trim() || 'see logs/daemon.log in the home'}`);
        // Exit 0: it found the home lock held. Another daemon may have won the race (it will
        // answer soon), or the recorded holder is still dying (a daemon just killed): if
        // nothing answers after a moment, try again.
        if (Date.now() - exitedAt > 1000) launch();
      }
      if (Date.now() > deadline) throw new AtlasError('daemon_unreachable', `the daemon did not answer within ${(options.timeoutMs ?? 15_000) / 1000}s; see logs/daemon.log in the home`);
      await sleep(25);
    }
  } finally {
    for (const child of children) {
      child.stderr?.destroy();
      child.unref();
    }
  }
}
