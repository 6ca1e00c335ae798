// `atlas webhook list | test NAME | deliveries [NAME] [--failed]`: the webhooks configured in
// config.yaml, a signed test event sent now, and recent deliveries with their attempts.
import type { AtlasClient } from '../client/client.js';
import { clientCommand, type Cli } from './connect.js';
import { EXIT, ago, c, printJson, table } from './output.js';


const run = clientCommand;

export function registerWebhookCommands(cli: Cli): Cli {
  return cli.command('webhook <command>', 'webhooks configured in config.yaml: list, test, deliveries', (y) =>
    y
      .command(
        'list',
        'the webhooks, with what is pending, delivered and failed',
        (y) => y,
        run(async (args, client) => {
          const list = await client.call('webhook.list', {});
          if (args.json) return printJson(list);
          if (list.length === 0) return void process.stderr.write('no webhooks configured (add webhooks: to config.yaml)\n');
          process.stdout.write(
            table(
              ['NAME', 'URL', 'EVENTS', 'STATE', 'PENDING', 'DELIVERED', 'FAILED'],
              list.map((w) => [w.name, w.url, w.events.join(','), w.disabled ? c.red(`disabled: ${w.disabled.reason}`) : c.green('active'), String(w.pending + w.in_flight), String(w.delivered), String(w.failed)]),
            ) + '\n',
          );
        }),
      )
      .command(
        'test <name>',
        'send one signed webhook.test event now and show the answer',
        (y) => y.positional('name', { type: 'string', demandOption: true }),
        run(async (args, client) => {
          const r = await client.call('webhook.test', { name: args.name });
          if (args.json) printJson(r);
          else process.stdout.write(`${r.kind === 'ok' ? c.green('ok') : c.red('failed')} ${r.url}: ${r.status !== null ? `HTTP ${r.status}` : ''}${r.error && r.kind !== 'ok' ? ` ${r.error}` : ''} in ${r.duration_ms} ms\n`);
          return r.kind === 'ok' ? EXIT.OK : EXIT.TASK_FAILED;
        }),
      )
      .command(
        'deliveries [name]',
        'recent deliveries (and those still pending), oldest first',
        (y) => y.positional('name', { type: 'string' }).option('failed', { type: 'boolean', describe: 'only failed or retrying ones' }),
        run(async (args, client) => {
          const list = await client.call('webhook.deliveries', { ...(args.name ? { name: args.name } : {}), ...(args.failed ? { failed: true } : {}) });
          if (args.json) return printJson(list);
          process.stdout.write(
            table(
              ['WEBHOOK', 'SEQ', 'TYPE', 'TASK', 'STATUS', 'ATTEMPTS', 'LAST', 'WHEN'],
              list.map((d) => [d.webhook, String(d.seq), d.type, d.task_id, d.status === 'delivered' ? c.green(d.status) : d.status === 'failed' ? c.red(d.status) : c.yellow(d.status), String(d.attempts), d.last_status !== null ? String(d.last_status) : (d.last_error ?? '-'), ago(d.last_attempt_at)]),
            ) + '\n',
          );
        }),
      )
      .demandCommand(1, 'name a webhook command: list, test, deliveries'),
  );
}
