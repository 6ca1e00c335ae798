// atlas workspace create | list | show | remove: each a yargs command with its own options.
import path from 'node:path';
import { isRepoUrl } from '../util/repo-url.js';
import { clientCommand, type Cli } from './connect.js';
import { ago, c, printJson, statusColor, table, warn } from './output.js';

const act = clientCommand;

export function registerWorkspaceCommands(cli: Cli): Cli {
  return cli.command('workspace <command>', 'create, list, show or remove workspaces', (y) =>
    y
      .command(
        'create <name>',
        'make a workspace: an existing directory, or a new git worktree',
        (y) =>
          y
            .positional('name', { type: 'string', demandOption: true, describe: 'the workspace name' })
            .option('path', { type: 'string', describe: 'an existing directory (default: the current one)' })
            .option('repo', { type: 'string', describe: 'a git repository to make a worktree of (a directory), or to clone (a URL), on a new branch' })
            .option('branch', { type: 'string', describe: 'with --repo: the new branch (default atlas/<name>)' })
            .example('$0 workspace create api --path ~/src/api', 'use an existing directory')
            .example('$0 workspace create fix-42 --repo ~/src/api --branch fix/42', 'a new git worktree')
            .example('$0 workspace create api --repo https://git.example.com/api.git', 'a clone (on a shared store, every daemon makes its own)'),
        act(async (args, client) => {
          const ws = await client.call('workspace.create', {
            name: args.name,
            // Both are sent when both are given: the daemon refuses the pair (never one dropped in silence).
            ...(args.repo ? { repo: isRepoUrl(args.repo) ? args.repo : path.resolve(args.repo) } : {}),
            ...(args.path !== undefined || !args.repo ? { path: path.resolve(args.path ?? '.') } : {}),
            ...(args.branch ? { branch: args.branch } : {}),
          });
          if (args.json) return printJson(ws);
          process.stdout.write(`created workspace ${c.bold(ws.name)} at ${ws.path}${ws.branch ? ` (branch ${ws.branch})` : ''}\n`);
        }),
      )
      .command(
        'list',
        'the workspaces',
        (y) => y,
        act(async (args, client) => {
          const list = await client.call('workspace.list');
          if (args.json) return printJson(list);
          if (list.length === 0) return void process.stdout.write("no workspaces yet; create one with 'atlas workspace create <name> --path DIR'\n");
          process.stdout.write(table(['NAME', 'KIND', 'PATH', 'CREATED'], list.map((w) => [w.name, w.kind, w.path, ago(w.created_at)])) + '\n');
        }),
      )
      .command(
        'show <name>',
        'a workspace and its recent tasks',
        (y) => y.positional('name', { type: 'string', demandOption: true, describe: 'the workspace name' }),
        act(async (args, client) => {
          const ws = await client.call('workspace.get', { name: args.name });
          if (args.json) return printJson(ws);
          const lines = [
            `${c.bold(ws.name)}  ${ws.kind}`,
            `path     ${ws.path}`,
            ...(ws.repo ? [`repo     ${ws.repo}`, `branch   ${ws.branch}`] : []),
            `tasks    ${ws.tasks_total} (${ws.tasks_open} open)`,
          ];
          process.stdout.write(lines.join('\n') + '\n');
          if (ws.recent_tasks.length) process.stdout.write('\n' + table(['ID', 'STATUS', 'TEMPLATE', 'CREATED'], ws.recent_tasks.map((t) => [t.id, statusColor(t.status), t.template, ago(t.created_at)])) + '\n');
        }),
      )
      .command(
        'remove <name>',
        'forget a workspace (its directory stays); --purge deletes its task history too',
        (y) =>
          y
            .positional('name', { type: 'string', demandOption: true, describe: 'the workspace name' })
            .option('purge', { type: 'boolean', describe: 'delete the task history too', default: false })
            .option('force', { type: 'boolean', describe: 'with --purge: even past the guard of 20 deletions a minute', default: false }),
        act(async (args, client) => {
          const r = await client.call('workspace.remove', { name: args.name, purge: args.purge, ...(args.force ? { force: true } : {}) });
          for (const w of r.warnings) warn(w);
          if (args.json) return printJson(r);
          process.stdout.write(`removed workspace ${r.name}${r.purged ? ' and its task history' : ' (task history kept)'}\n`);
        }),
      )
      .demandCommand(1, 'name a workspace command: create, list, show, remove'),
  );
}
