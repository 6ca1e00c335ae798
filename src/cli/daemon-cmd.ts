// atlas daemon start | stop | restart | reload | status | run | install-service: each a yargs
// command with only its own options (`atlas daemon stop --help` shows --timeout and --detach).
// `daemon status` in its plain form runs through the fast path (fast.ts) without yargs.
import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs';
import path from 'node:path';
import type { Options } from 'yargs';
import { AtlasClient, isPermissionDenied, startDaemon } from '../client/client.js';
import { AtlasError } from '../errors.js';
import { parseDuration } from '../templates/schema.js';
import { act, homeOf, type Cli, type GlobalArgs } from './connect.js';
import { info, printJson, warn } from './output.js';
import { installedUnit, serviceUnit } from './service-unit.js';
import { daemonStatus as status } from './daemon-status.js';

/** --timeout, as stop, restart and run read it. */
const timeout = (describe: string) => ({ type: 'string', default: '10s', describe }) as const satisfies Options;

export function registerDaemonCommands(cli: Cli): Cli {
  return cli.command('daemon <command>', 'start, stop or inspect the background daemon', (y) =>
    y
      .command('start', 'start the daemon in the background (nothing happens if one runs)', (y) => y.example('$0 daemon start', 'start the daemon in the background'), act(start))
      .command(
        'stop',
        'stop the daemon: running steps get --timeout to finish, then are stopped (or, with --detach, keep running)',
        (y) =>
          y
            .option('timeout', timeout('grace period for running steps (e.g. 10s)'))
            .option('detach', { type: 'boolean', default: false, describe: 'leave running steps running (the next daemon re-attaches to them)' }),
        act(stop),
      )
      .command(
        'restart',
        'stop the daemon and start a new one; running steps keep running and the new daemon re-attaches to them',
        (y) => y.option('timeout', timeout('how long the old daemon may take to stop (e.g. 10s)')),
        act(async (args) => {
          await stop({ ...args, detach: true, json: false, quietStop: true });
          await start(args);
        }),
      )
      .command('reload', 'read config.yaml again: say what changed, what applied now and what needs a restart', (y) => y, act(reload))
      .command('status', 'pid, version, uptime, slots and tasks by status', (y) => y.example('$0 daemon status --json', 'pid, version, uptime and tasks by status'), act(status))
      .command(
        'run',
        'run the daemon in the foreground (what start runs in the background; for a service manager)',
        (y) =>
          y
            .option('timeout', timeout('grace period for running steps when the daemon stops (e.g. 10s)'))
            .option('quiet', { type: 'boolean', default: false, describe: 'log only to logs/daemon.log' }),
        act(run),
      )
      .command(
        'install-service',
        'write a systemd user unit (Linux) or a launchd agent (macOS) that keeps the daemon up',
        (y) => y.option('print', { type: 'boolean', default: false, describe: 'print the unit instead of writing it' }),
        act(installService),
      )
      .demandCommand(1, 'name a daemon command: start, stop, restart, reload, status, run, install-service'),
  );
}

/** --timeout as milliseconds; a value that is not a duration is refused. */
function graceOf(args: { timeout: string }): number {
  const grace = parseDuration(args.timeout);
  if (grace === undefined) throw new AtlasError('invalid_input', `--timeout: expected a duration such as 10s, got ${args.timeout}`);
  return grace;
}

async function start(args: GlobalArgs): Promise<void> {
  const home = homeOf(args);
  const r = await startDaemon(home);
  if (args.json) printJson({ pid: r.pid, version: r.version, home, already_running: r.alreadyRunning });
  else if (r.alreadyRunning) info(`atlas: a daemon is already running (pid ${r.pid}) for ${home}`);
  else process.stdout.write(`started the atlas daemon (pid ${r.pid}) for ${home}\n`);
  await warnUnsupervised(home, r.pid);
}

/** A service unit is installed for this home but the daemon running was started by hand: say so. */
async function warnUnsupervised(home: string, pid: number): Promise<void> {
  const unit = installedUnit(home);
  if (!unit) return;
  const client = await AtlasClient.connect(home).catch(() => undefined);
  if (!client) return;
  try {
    const s = await client.call('daemon.status');
    if (s.supervisor) return;
  } catch {
    return;
  } finally {
    client.close();
  }
  warn(`${unit.file} is installed for this home, but the daemon running (pid ${pid}) was started by hand, so ${unit.kind} does not restart it after a crash; hand it over with: atlas daemon stop && ${unit.start}`);
}

async function stop(args: GlobalArgs & { timeout: string; detach: boolean; quietStop?: boolean }): Promise<void> {
  const home = homeOf(args);
  const grace = graceOf(args);
  let client: AtlasClient;
  try {
    client = await AtlasClient.connect(home);
  } catch (err) {
    if (err instanceof AtlasError && err.code === 'daemon_unreachable' && !isPermissionDenied(err)) {
      if (args.json) printJson({ stopped: false, running: false });
      else info('atlas: the daemon is not running');
      return;
    }
    throw err;
  }
  const r = await client.call('daemon.stop', { timeout_ms: grace, detach: args.detach });
  // The daemon closes our connection when it stops listening; then wait for the process to go.
  await client.closed;
  const deadline = Date.now() + grace + 20_000;
  while (Date.now() < deadline && alive(r.pid)) await sleep(50);
  if (alive(r.pid)) throw new AtlasError('internal', `the daemon (pid ${r.pid}) did not stop in time`);
  if (args.quietStop) info(`atlas: stopped the daemon (pid ${r.pid}); running steps keep running`);
  else if (args.json) printJson({ stopped: true, pid: r.pid, detached: args.detach });
  else process.stdout.write(`stopped the atlas daemon (pid ${r.pid})${args.detach ? '; running steps keep running' : ''}\n`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


async function run(args: GlobalArgs & { timeout: string; quiet: boolean }): Promise<void> {
  const home = homeOf(args);
  const grace = graceOf(args);
  // Loaded only for `daemon run`: every other command stays a thin client.
  const { AlreadyRunningError, runDaemon } = await import('../daemon/daemon.js');
  try {
    const daemon = await runDaemon({ home, graceMs: grace, logToStderr: !args.quiet });
    if (!args.quiet) info(`atlas daemon running (pid ${process.pid}) for ${home}; socket ${daemon.socketPath}`);
    await daemon.stopped;
    process.exit(0);
  } catch (err) {
    if (err instanceof AlreadyRunningError) {
      info(`atlas: ${err.message}`);
      process.exit(0);
    }
    throw err;
  }
}

/** Writes a systemd user unit (Linux) or a launchd agent (macOS) that keeps the daemon up. */
function installService(args: GlobalArgs & { print: boolean }): void {
  const unit = serviceUnit(homeOf(args));
  if (args.print) {
    process.stdout.write(unit.text);
    return;
  }
  fs.mkdirSync(path.dirname(unit.file), { recursive: true });
  fs.writeFileSync(unit.file, unit.text, { mode: 0o644 });
  if (args.json) return printJson({ file: unit.file, name: unit.name, enable: unit.enable });
  process.stdout.write(`wrote ${unit.file} (PATH as in this shell; add variables with Environment= lines)\nto enable it:\n${unit.enable.map((l) => `  ${l}`).join('\n')}\n`);
}

/** `atlas daemon reload`: config.yaml again; says what changed, what applied, what needs a restart. */
async function reload(args: GlobalArgs): Promise<void> {
  const client = await AtlasClient.connect(homeOf(args));
  try {
    const r = await client.call('daemon.reload');
    if (args.json) return printJson(r);
    if (r.changed.length === 0) process.stdout.write('config.yaml: nothing changed\n');
    if (r.applied.length) process.stdout.write(`applied now: ${r.applied.join(', ')}\n`);
    if (r.needs_restart.length) process.stdout.write(`needs 'atlas daemon restart': ${r.needs_restart.join(', ')}\n`);
    process.stdout.write(`user templates (read at every start): ${r.templates.length ? r.templates.join(', ') : 'none'}\n`);
  } finally {
    client.close();
  }
}
