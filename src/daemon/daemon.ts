// The daemon process: one per home. Lifecycle:
//   starting -> running -> draining -> stopped
// Start: take the home lock (proper-lockfile on daemon.lock, with our pid in daemon.pid and
// our start time in daemon.json, so a killed daemon's lock is broken at once instead of after
// it goes stale),
// replace any stale socket (only the lock holder may), open the engine, recover, listen.
// Stop (SIGTERM, SIGINT or daemon.stop): stop starting steps, give running ones a grace
// period, stop the rest, flush, remove the socket and pid file, exit 0. A second signal
// skips the grace period.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { AtlasError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { socketPathFor } from '../protocol/socket-path.js';
import { assertTrustedSocketDir } from '../protocol/socket-trust.js';
import { DIR_MODE, ensureDir } from '../store/atomic.js';
import { HomePaths } from '../store/paths.js';
import { acquireHomeLock, type HomeLock } from './home-lock.js';
import { RotatingLogDestination } from './log-rotation.js';
import { processStartTicks } from '../util/proc.js';
import { VERSION } from '../version.js';
import { makeHandlers } from './handlers.js';
import { HttpControl } from './http-control.js';
import { faultGate } from '../util/fault.js';
import { Schedules } from '../engine/schedules.js';
import { RpcServer } from './rpc-server.js';

/** The daemon's exit code after an uncaught error (EX_SOFTWARE); a supervisor restarts it. */
export const EXIT_INTERNAL_ERROR = 70;

export type DaemonState = 'starting' | 'running' | 'draining' | 'stopped';

export interface DaemonOptions {
  home: string;
  /** Grace period for running steps on stop, unless the stop request names one. */
  graceMs?: number;
  /** Log to stderr too (foreground runs). */
  logToStderr?: boolean;
}

export interface DaemonOwner {
  pid: number;
  start_ticks: number | null;
  version: string;
  socket: string;
  started_at: string;
}

export class AlreadyRunningError extends AtlasError {
  constructor(readonly owner: { pid: number } | undefined) {
    super('already_exists', `a daemon is already running for this home${owner ? ` (pid ${owner.pid})` : ''}`, { details: { pid: owner?.pid } });
  }
}

export class Daemon {
  state: DaemonState = 'starting';
  private lock: HomeLock | undefined;
  private server: RpcServer | undefined;
  private engine: Engine | undefined;
  private http: HttpControl | undefined;
  private schedules: Schedules | undefined;
  private stopping: Promise<void> | undefined;
  private readonly paths: HomePaths;
  readonly socketPath: string;
  readonly log: Logger;
  private readonly graceMs: number;
  private resolveStopped!: () => void;
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));

  /** logs/daemon.log, rotated by size (daemon_log in config.yaml). */
  private readonly logFile: RotatingLogDestination;

  constructor(options: DaemonOptions) {
    this.paths = new HomePaths(options.home);
    this.socketPath = socketPathFor(this.paths.root);
    this.graceMs = options.graceMs ?? 10_000;
    fs.mkdirSync(this.paths.logsDir, { recursive: true, mode: DIR_MODE });
    // Neither destination may throw: a log call inside an error path must not become an error.
    const dest = new RotatingLogDestination(this.paths.daemonLog);
    this.logFile = dest;
    if (options.logToStderr) process.stderr.on('error', () => undefined);
    this.log = options.logToStderr
      ? pino({ base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream([{ stream: dest }, { stream: process.stderr }]))
      : pino({ base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  }

  async start(): Promise<void> {
    // Milliseconds since the process started, per phase, for the 'daemon ready' log line.
    const marks: Record<string, number> = { loaded: Math.round(performance.now()) };
    await ensureDir(this.paths.root);
    await fsp.chmod(this.paths.root, DIR_MODE);
    const owner: DaemonOwner = { pid: process.pid, start_ticks: processStartTicks(process.pid), version: VERSION, socket: this.socketPath, started_at: new Date().toISOString() };
    const got = await acquireHomeLock(this.paths.root, this.paths.lockFile, { pid: this.paths.pidFile, owner: this.paths.ownerFile }, owner);
    if (!got.ok) throw new AlreadyRunningError(got.owner);
    this.lock = got.lock;
    try {
      // We hold the lock: whatever socket is there belongs to a dead daemon.
      await ensureDir(path.dirname(this.socketPath));
      // Never chmod a directory someone else made: refuse it (a fallback under /tmp could be theirs).
      if (path.dirname(this.socketPath) !== this.paths.root) assertTrustedSocketDir(path.dirname(this.socketPath));
      await fsp.unlink(this.socketPath).catch(() => undefined);
      this.engine = await Engine.open({ home: this.paths.root, logger: this.log });
      // config.yaml's log_level applies from here on (reload applies later changes).
      this.log.level = this.engine.config.log_level;
      this.logFile.configure({ max_bytes: this.engine.config.daemon_log.max_bytes, keep: this.engine.config.daemon_log.keep });
      marks['engine_open'] = Math.round(performance.now());
      // The HTTP listener (if configured) comes up before recovery, so /readyz can say "not yet".
      this.http = new HttpControl(this.engine, this.paths.root, this.log, () => this.state === 'running');
      await this.http.startConfigured();
      await faultGate('RECOVERY');
      const report = await this.engine.start();
      // Fires a crash left half done are finished before anything else can start a task.
      this.schedules = new Schedules(this.engine, this.log);
      await this.schedules.start();
      marks['recovered'] = Math.round(performance.now());
      this.engine.on('task_error', (id, err) => this.log.warn({ task: id }, `task ${id}: ${err instanceof Error ? err.message : String(err)}`));
      const http = this.http;
      const handlers = makeHandlers(this.engine, {
        home: this.paths.root,
        socket: this.socketPath,
        startedAt: Date.now(),
        recovery: report,
        schedules: this.schedules,
        stop: (t, detach) => void this.stop(t, detach),
        httpLogin: (listen) => http.login(listen),
      });
      this.server = new RpcServer(handlers, this.log);
      await this.server.listen(this.socketPath);
      await fsp.chmod(this.socketPath, 0o600);
      this.state = 'running';
      this.http.serve(handlers);
      marks['listening'] = Math.round(performance.now());
      this.log.info({ version: VERSION, home: this.paths.root, socket: this.socketPath, startup_ms: marks, recovery: { requeued: report.requeued.length, rerun: report.rerun.length, paused: report.paused.length, killed_groups: report.killed_groups, ms: report.duration_ms } }, 'daemon ready');
    } catch (err) {
      await this.cleanup();
      throw err;
    }
  }

  /** Re-reads config.yaml (SIGHUP); see Engine.reload. */
  async reload(): Promise<unknown> {
    if (!this.engine) throw new Error('the daemon is not running yet');
    return this.engine.reload();
  }

  /**
   * Drains and stops. A second call while draining skips the grace period. With `detach`,
   * running steps are left running for the next daemon to re-attach (a restart).
   */
  stop(graceMs?: number, detach = false): Promise<void> {
    if (this.stopping) {
      this.log.info('second stop request: stopping running steps now');
      void this.engine?.shutdown(0);
      return this.stopping;
    }
    this.state = 'draining';
    this.log.info({ grace_ms: graceMs ?? this.graceMs, detach }, detach ? 'stopping; running steps keep running' : 'stopping');
    this.stopping = (async () => {
      await this.server?.close().catch(() => undefined);
      await this.http?.close();
      await this.schedules?.stop();
      await this.engine?.shutdown(graceMs ?? this.graceMs, { detach }).catch((err: unknown) => this.log.error({ err }, 'engine shutdown failed'));
      await this.cleanup();
      this.state = 'stopped';
      this.log.info('stopped');
      this.log.flush();
      this.resolveStopped();
    })();
    return this.stopping;
  }

  private async cleanup(): Promise<void> {
    await this.http?.close();
    await fsp.unlink(this.socketPath).catch(() => undefined);
    await this.lock?.release().catch(() => undefined);
    this.lock = undefined;
  }
}

/** Runs a daemon in this process until it is stopped; wires SIGTERM/SIGINT. */
export async function runDaemon(options: DaemonOptions): Promise<Daemon> {
  const daemon = new Daemon(options);
  const onSignal = (sig: NodeJS.Signals) => {
    daemon.log.info({ signal: sig }, 'signal received');
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP: re-read config.yaml, as `atlas daemon reload` does (the result goes to the log).
  process.on('SIGHUP', () => {
    daemon.log.info('SIGHUP: reloading config.yaml');
    void daemon.reload().catch((err: unknown) => daemon.log.warn(`reload failed, nothing changed: ${(err as Error).message}`));
  });
  // Requests and steps handle their own errors. Anything that escapes them leaves the daemon
  // in a state nobody has reasoned about: log it and exit non-zero at once (no drain, which
  // would run through the same broken state). Every task is checkpointed; the next start
  // (a supervisor's Restart=on-failure, or the next CLI command) recovers them, which is
  // tested, where limping on is not.
  const die = (kind: string, err: unknown) => {
    try {
      daemon.log.fatal({ err: { message: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack } }, `${kind}: exiting so that a restart recovers the tasks`);
    } catch {
      // the log cannot be written either; the exit code still says it
    }
    try {
      process.stderr.write(`atlas daemon: ${kind}: ${(err as Error)?.stack ?? String(err)}\n`);
    } catch {
      // no stderr
    }
    process.exit(EXIT_INTERNAL_ERROR);
  };
  process.on('uncaughtException', (err) => die('uncaught exception', err));
  process.on('unhandledRejection', (err) => die('unhandled rejection', err));
  await daemon.start();
  return daemon;
}
