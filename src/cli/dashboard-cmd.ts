// atlas dashboard [--listen HOST:PORT] [--open]: turns the daemon's HTTP listener on if it is
// off and prints a one-time login URL for the web dashboard (DESIGN §11).
import { spawn } from 'node:child_process';
import { withClient, type Cli } from './connect.js';
import { c, fail, info, printJson } from './output.js';

export function registerDashboardCommand(cli: Cli): Cli {
  return cli.command(
    'dashboard',
    'print a one-time login URL for the web dashboard (turns the HTTP listener on if needed)',
    (y) =>
      y
        .option('listen', { type: 'string', describe: 'where to listen if the listener is off (default: http.listen in config.yaml, else 127.0.0.1:7390)' })
        .option('open', { type: 'boolean', default: false, describe: 'open the URL in a browser (xdg-open / open)' }),
    async (args) => {
      try {
        const r = await withClient(args, (client) => client.call('http.login', args.listen !== undefined ? { listen: args.listen } : {}));
        if (args.json) printJson(r);
        else {
          if (r.started_now) info(`atlas: the HTTP listener is now on at ${r.url} until the daemon stops (set http.listen in config.yaml to keep it on)`);
          process.stdout.write(`${r.login_url}\n`);
          info(c.errDim('The link logs in once and expires in 10 minutes.'));
        }
        if (args.open) {
          const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
          const child = spawn(opener, [r.login_url], { stdio: 'ignore', detached: true });
          child.on('error', () => info(`atlas: could not run ${opener}; open the URL yourself`));
          child.unref();
        }
      } catch (err) {
        fail(err);
      }
    },
  );
}
