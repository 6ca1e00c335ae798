// atlas template list | show <name> | validate <file>
import path from 'node:path';
import type { Argv } from 'yargs';
import { withClient, type GlobalArgs } from './connect.js';
import { EXIT, c, fail, printJson, table } from './output.js';

export function registerTemplateCommands(cli: Argv): Argv {
  return cli.command('template <action> [target]', 'list, show or validate templates', (y) =>
    y
      .positional('action', { choices: ['list', 'show', 'validate'] as const })
      .positional('target', { type: 'string', describe: 'show: a template name; validate: a YAML file' })
      .example('$0 template validate ./release.yaml', 'check a template before using it'),
    async (a) => {
      const args = a as unknown as GlobalArgs & { action: string; target?: string };
      try {
        if (args.action !== 'list' && !args.target) {
          process.stderr.write(`atlas: 'template ${args.action}' needs ${args.action === 'show' ? 'a template name' : 'a file'}\n`);
          process.exit(EXIT.USAGE);
        }
        await withClient(args, async (client) => {
          if (args.action === 'list') {
            const list = await client.call('template.list');
            if (args.json) return printJson(list);
            process.stdout.write(
              table(
                ['NAME', 'STEPS', 'SOURCE', 'DESCRIPTION'],
                list.map((t) => [t.name, t.error ? c.red('invalid') : String(t.steps), t.builtin ? 'built-in' : t.overrides_builtin ? 'user (overrides built-in)' : 'user', t.error ? t.error.split('\n')[1] ?? t.error : t.description]),
              ) + '\n',
            );
          } else if (args.action === 'show') {
            const t = await client.call('template.get', { name: args.target! });
            if (args.json) return printJson(t);
            process.stdout.write(`${c.dim(`# ${t.source}`)}\n${t.text ?? ''}`);
          } else {
            const file = path.resolve(args.target!);
            const r = await client.call('template.validate', { file });
            if (args.json) printJson(r);
            else {
              for (const w of r.warnings ?? []) process.stderr.write(c.errYellow(w) + '\n');
              if (r.valid) process.stdout.write(`${file}: valid template ${r.name} with ${r.steps?.length} steps (${r.steps?.map((s) => `${s.name}:${s.type}`).join(', ')})\n`);
              else process.stderr.write(`${r.message}\n`);
            }
            if (!r.valid) process.exit(EXIT.USAGE);
          }
        });
      } catch (err) {
        fail(err);
      }
    },
  );
}
