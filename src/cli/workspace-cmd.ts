// atlas workspace create | list | show | remove
import path from 'node:path';
import type { Argv } from 'yargs';
import { withClient, type GlobalArgs } from './connect.js';
import { ago, c, fail, printJson, statusColor, table, warn } from './output.js';

export function registerWorkspaceCommands(cli: Argv): Argv {
  return cli.command('workspace <action> [name]', 'create, list, show or remove workspaces', (y) =>
    y
      .positional('action', { choices: ['create', 'list', 'show', 'remove'] as const })
      .positional('name', { type: 'string', describe: 'the workspace name' })
      .option('path', { type: 'string', describe: 'create: an existing directory (default: the current one)' })
      .option('repo', { type: 'string', describe: 'create: a git repository to make a worktree of, on a new branch' })
      .option('branch', { type: 'string', describe: 'create --repo: the new branch (default atlas/<name>)' })
      .option('purge', { type: 'boolean', describe: 'remove: delete the task history too', default: false })
      .option('force', { type: 'boolean', describe: 'remove --purge: even past the guard of 20 deletions a minute', default: false })
      .example('$0 workspace create api --path ~/src/api', 'use an existing directory')
      .example('$0 workspace create fix-42 --repo ~/src/api --branch fix/42', 'a new git worktree'),
    async (a) => {
      const args = a as unknown as GlobalArgs & { action: string; name?: string; path?: string; repo?: string; branch?: string; purge: boolean; force: boolean };
      try {
        if (args.action !== 'list' && !args.name) {
          process.stderr.write(`atlas: 'workspace ${args.action}' needs a name\n`);
          process.exit(2);
        }
        await withClient(args, async (client) => {
          switch (args.action) {
            case 'create': {
              const ws = await client.call('workspace.create', {
                name: args.name!,
                // Both are sent when both are given: the daemon refuses the pair (never one dropped in silence).
                ...(args.repo ? { repo: path.resolve(args.repo) } : {}),
                ...(args.path !== undefined || !args.repo ? { path: path.resolve(args.path ?? '.') } : {}),
                ...(args.branch ? { branch: args.branch } : {}),
              });
              if (args.json) return printJson(ws);
              process.stdout.write(`created workspace ${c.bold(ws.name)} at ${ws.path}${ws.branch ? ` (branch ${ws.branch})` : ''}\n`);
              return;
            }
            case 'list': {
              const list = await client.call('workspace.list');
              if (args.json) return printJson(list);
              if (list.length === 0) return void process.stdout.write("no workspaces yet; create one with 'atlas workspace create <name> --path DIR'\n");
              process.stdout.write(table(['NAME', 'KIND', 'PATH', 'CREATED'], list.map((w) => [w.name, w.kind, w.path, ago(w.created_at)])) + '\n');
              return;
            }
            case 'show': {
              const ws = await client.call('workspace.get', { name: args.name! });
              if (args.json) return printJson(ws);
              const lines = [
                `${c.bold(ws.name)}  ${ws.kind}`,
                `path     ${ws.path}`,
                ...(ws.repo ? [`repo     ${ws.repo}`, `branch   ${ws.branch}`] : []),
                `tasks    ${ws.tasks_total} (${ws.tasks_open} open)`,
              ];
              process.stdout.write(lines.join('\n') + '\n');
              if (ws.recent_tasks.length) process.stdout.write('\n' + table(['ID', 'STATUS', 'TEMPLATE', 'CREATED'], ws.recent_tasks.map((t) => [t.id, statusColor(t.status), t.template, ago(t.created_at)])) + '\n');
              return;
            }
            case 'remove': {
              const r = await client.call('workspace.remove', { name: args.name!, purge: args.purge, ...(args.force ? { force: true } : {}) });
              for (const w of r.warnings) warn(w);
              if (args.json) return printJson(r);
              process.stdout.write(`removed workspace ${r.name}${r.purged ? ' and its task history' : ' (task history kept)'}\n`);
              return;
            }
          }
        });
      } catch (err) {
        fail(err);
      }
    },
  );
}
