// atlas template list | show <name> | validate <file>: each a yargs command.
import path from 'node:path';
import { clientCommand, type Cli } from './connect.js';
import { EXIT, c, printJson, table } from './output.js';

const act = clientCommand;

export function registerTemplateCommands(cli: Cli): Cli {
  return cli.command('template <command>', 'list, show or validate templates', (y) =>
    y
      .command(
        'list',
        'the templates there are: built-in and yours',
        (y) => y,
        act(async (args, client) => {
          const list = await client.call('template.list');
          if (args.json) return printJson(list);
          process.stdout.write(
            table(
              ['NAME', 'STEPS', 'SOURCE', 'DESCRIPTION'],
              list.map((t) => [t.name, t.error ? c.red('invalid') : String(t.steps), t.builtin ? 'built-in' : t.overrides_builtin ? 'user (overrides built-in)' : 'user', t.error ? t.error.split('\n')[1] ?? t.error : t.description]),
            ) + '\n',
          );
        }),
      )
      .command(
        'show <name>',
        "a template's YAML and where it comes from",
        (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'a template name' }),
        act(async (args, client) => {
          const t = await client.call('template.get', { name: args.name });
          if (args.json) return printJson(t);
          process.stdout.write(`${c.dim(`# ${t.source}`)}\n${t.text ?? ''}`);
        }),
      )
      .command(
        'validate <file>',
        'check a template file, naming file:line of each problem',
        (y) => y.positional('file', { type: 'string', demandOption: true, describe: 'a YAML file' }).example('$0 template validate ./release.yaml', 'check a template before using it'),
        act(async (args, client) => {
          const file = path.resolve(args.file);
          const r = await client.call('template.validate', { file });
          if (args.json) printJson(r);
          else {
            for (const w of r.warnings ?? []) process.stderr.write(c.errYellow(w) + '\n');
            if (r.valid) process.stdout.write(`${file}: valid template ${r.name} with ${r.steps?.length} steps (${r.steps?.map((s) => `${s.name}:${s.type}`).join(', ')})\n`);
            else process.stderr.write(`${r.message}\n`);
          }
          return r.valid ? undefined : EXIT.USAGE;
        }),
      )
      .demandCommand(1, 'name a template command: list, show, validate'),
  );
}
