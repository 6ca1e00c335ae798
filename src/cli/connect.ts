// How a command reaches the daemon: connect, starting the daemon first when a command needs
// it and none runs (said on stderr), and warn once when the daemon's version differs.
import path from 'node:path';
import type { Argv } from 'yargs';
import { AtlasClient, isUntrusted, startDaemon } from '../client/client.js';
import { AtlasError } from '../errors.js';
import type { Notification } from '../protocol/methods.js';
import { defaultHome } from '../store/paths.js';
import { VERSION } from '../version.js';
import { fail, info, warn } from './output.js';

export interface GlobalArgs {
  home?: string | undefined;
  json?: boolean | undefined;
}

/** The CLI as a command group sees it: the global options typed, so handlers need no casts. */
export type Cli = Argv<GlobalArgs>;

export function homeOf(args: GlobalArgs): string {
  return args.home ? path.resolve(args.home) : defaultHome();
}

export interface ConnectOptions {
  /** Start the daemon if it is not running (default true). */
  autostart?: boolean;
  onNotify?: (n: Notification) => void;
  onClose?: () => void;
}

export async function connect(args: GlobalArgs, options: ConnectOptions = {}): Promise<AtlasClient> {
  const home = homeOf(args);
  const opts = { ...(options.onNotify ? { onNotify: options.onNotify } : {}), ...(options.onClose ? { onClose: options.onClose } : {}) };
  let client: AtlasClient;
  try {
    client = await AtlasClient.connect(home, opts);
  } catch (err) {
    if (!(err instanceof AtlasError && err.code === 'daemon_unreachable') || options.autostart === false) throw err;
    if ((err.details as { errno?: string } | undefined)?.errno === 'EACCES' || isUntrusted(err)) throw err;
    const started = await startDaemon(home);
    if (!started.alreadyRunning) info(`atlas: started the daemon (pid ${started.pid}) for ${home}`);
    client = await AtlasClient.connect(home, opts);
  }
  const ping = await client.call('daemon.ping');
  if (ping.version !== VERSION) warn(`the daemon runs atlas ${ping.version} but this CLI is ${VERSION}; restart it with 'atlas daemon stop && atlas daemon start'`);
  return client;
}

/** Connects, runs `fn`, and always closes the connection. */
export async function withClient<T>(args: GlobalArgs, fn: (c: AtlasClient) => Promise<T>, options: ConnectOptions = {}): Promise<T> {
  const client = await connect(args, options);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** A yargs handler that runs `fn`; an error is printed with its exit code. The arguments' type
 *  is the one the command's builder declares. */
export function act<A>(fn: (args: A) => Promise<void> | void) {
  return async (args: A): Promise<void> => {
    try {
      await fn(args);
    } catch (err) {
      fail(err);
    }
  };
}

/** A yargs handler that runs `fn` with a client: errors are printed with their exit code, and
 *  a number returned is the exit code. */
export function clientCommand<A extends GlobalArgs>(fn: (args: A, client: AtlasClient) => Promise<number | void>) {
  return async (args: A): Promise<void> => {
    let code: number | void = 0;
    try {
      code = await withClient(args, (client) => fn(args, client));
    } catch (err) {
      fail(err);
    }
    if (typeof code === 'number' && code !== 0) process.exit(code);
  };
}
