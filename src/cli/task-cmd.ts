// Task commands: start, list, show, logs, artifacts, resume, cancel, approve, reject, delete.
import type { Cli } from './connect.js';
import { TASK_STATUSES } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { follow } from './follow.js';
import { ago, c, info, printJson, statusColor, table } from './output.js';
import { action, listAction, showAction, startAction } from './task-actions.js';
import { formatRecord } from './log-format.js';

export function registerTaskCommands(cli: Cli): Cli {
  return cli
    .command(
      'start [template]',
      'start a task from a template (a name, or a path to a YAML file), or a batch of tasks',
      (y) =>
        y
          .positional('template', { type: 'string' })
          .option('workspace', { alias: 'w', type: 'string', describe: 'the workspace to run in' })
          .option('batch', { type: 'string', describe: 'a batch file: tasks: [{key, template, workspace, inputs, after: [keys]}], all created or none' })
          .option('input', { alias: 'i', type: 'string', array: true, describe: 'an input, key=value (repeatable); key=@file reads the value from a file (@- stdin, @@ a literal @)' })
          .option('description', { alias: 'd', type: 'string' })
          .option('priority', { type: 'number', describe: 'higher runs first (default 0)' })
          .option('after', { type: 'string', array: true, describe: 'run only once these tasks completed (ID[,ID...], repeatable)' })
          .option('label', { alias: 'l', type: 'string', array: true, describe: 'a label, key=value (repeatable)' })
          .option('wait', { type: 'boolean', describe: 'wait until the task settles; exit 0 completed, 6 waiting for approval, 1 otherwise' })
          .option('follow', { alias: 'f', type: 'boolean', describe: 'show live progress until the task settles' })
          .option('env', { alias: 'e', type: 'string', array: true, describe: 'KEY keeps that variable (with --env-clear), KEY=VALUE sets one (repeatable)' })
          .option('env-clear', { type: 'boolean', describe: "start the steps' environment empty instead of from this shell's" })
          .conflicts('wait', 'follow')
          .example('$0 start demo -w scratch --follow', 'run the demo and watch it')
          .example('$0 start --batch release.yaml --follow', 'a graph of tasks; watch all of them')
          .example('$0 start validate -w api -i checks="npm test" --wait', 'block until the checks pass or fail'),
      action(startAction),
    )
    .command(
      'list',
      'list tasks, newest first, with filters and paging',
      (y) =>
        y
          .option('workspace', { alias: 'w', type: 'string' })
          .option('status', { type: 'string', array: true, choices: TASK_STATUSES, describe: 'only tasks in this status (repeatable)' })
          .option('active', { type: 'boolean', describe: 'only tasks still moving or waiting for you: pending, running, awaiting_approval' })
          .option('template', { alias: 't', type: 'string' })
          .option('label', { alias: 'l', type: 'string', array: true, describe: 'only tasks with this label, key=value (repeatable: all must match)' })
          .option('since', { type: 'string', describe: 'created at or after: 7d, 12h, 2026-11-01, an ISO time' })
          .option('until', { type: 'string', describe: 'created before: 7d, 12h, 2026-11-01, an ISO time' })
          .option('text', { type: 'string', describe: 'a substring of the description, an input or the error (any case)' })
          .option('limit', { alias: 'n', type: 'number', default: 50, describe: 'at most this many (default 50)' })
          .option('all', { type: 'boolean', describe: 'every matching task, no limit' })
          .option('cursor', { type: 'string', describe: 'the next page: the cursor the previous page printed' })
          .option('with-total', { type: 'boolean', describe: 'with --json: print {tasks, total, next_cursor}' })
          .option('archived', { type: 'boolean', describe: 'list archived tasks (atlas prune) instead of live ones' })
          .example('$0 list --status failed --since 7d --text timeout', "last week's failures that mention a timeout")
          .example('$0 list -l team=infra --all --json', 'every task labelled team=infra, as JSON'),
      action(listAction),
    )
    .command(
      'show <id>',
      'show a task: its steps, attempts and result',
      (y) => y.positional('id', { type: 'string', demandOption: true }),
      action(showAction),
    )
    .command(
      'logs <id>',
      "print a task's log; -f follows it live",
      (y) =>
        y
          .positional('id', { type: 'string', demandOption: true })
          .option('follow', { alias: 'f', type: 'boolean', default: false })
          .option('step', { type: 'string', describe: 'only this step' })
          .option('tail', { type: 'number', describe: 'only the last N records' }),
      action(async (args, client) => {
        const id = String(args['id']);
        const step = args['step'] !== undefined ? String(args['step']) : undefined;
        if (args['follow']) {
          const final = await follow(args, id, { step, history: true, jsonLines: Boolean(args.json) });
          if (!args.json) info(`${id} ${statusColor(final.status)}`);
          return;
        }
        // A page at a time, so neither the daemon nor this process holds a long log at once.
        const all: LogRecord[] = [];
        let skipped = 0;
        for (let offset = 0; ; ) {
          const r = await client.call('task.logs', { id, offset, ...(step ? { step } : {}), ...(args['tail'] !== undefined ? { tail: Number(args['tail']) } : {}) });
          skipped += r.skipped_lines;
          if (args.json) all.push(...r.records);
          else for (const rec of r.records) process.stdout.write(formatRecord(rec));
          if (!r.more) break;
          offset = r.next_offset;
        }
        if (args.json) return printJson(all);
        if (skipped) info(c.errDim(`(${skipped} torn or unreadable log lines skipped)`));
      }),
    )
    .command(
      'artifacts <id> [name]',
      "list a task's artifacts, or print one",
      (y) => y.positional('id', { type: 'string', demandOption: true }).positional('name', { type: 'string' }),
      action(async (args, client) => {
        const id = String(args['id']);
        if (args['name'] !== undefined) {
          const a = await client.call('task.artifact', { id, name: String(args['name']) });
          if (args.json) return printJson(a);
          process.stdout.write(a.encoding === 'base64' ? Buffer.from(a.content, 'base64') : a.content);
          return;
        }
        const list = await client.call('task.artifacts', { id });
        if (args.json) return printJson(list);
        if (list.length === 0) return void process.stdout.write('no artifacts yet\n');
        process.stdout.write(table(['NAME', 'SIZE', 'MODIFIED'], list.map((a) => [a.name, `${a.size}`, ago(a.modified_at)])) + '\n');
      }),
    )
    .command('resume <id>', 're-run the failed or interrupted step of a task', (y) => y.positional('id', { type: 'string', demandOption: true }), simple('task.resume', 'resumed'))
    .command('cancel <id>', 'stop a task for good (kills its running step)', (y) => y.positional('id', { type: 'string', demandOption: true }), simple('task.cancel', 'canceled'))
    .command('approve <id>', 'approve the human step a task waits on', (y) => y.positional('id', { type: 'string', demandOption: true }), simple('task.approve', 'approved'))
    .command(
      'reject <id>',
      'reject the human step a task waits on; --retry-from runs it again from a step',
      (y) =>
        y
          .positional('id', { type: 'string', demandOption: true })
          .option('reason', { type: 'string', demandOption: true, describe: 'why (kept in the task)' })
          .option('retry-from', { type: 'string', describe: 'run the task again from this step instead of ending it' }),
      action(async (args, client) => {
        const t = await client.call('task.reject', {
          id: String(args['id']),
          reason: String(args['reason']),
          ...(args['retryFrom'] !== undefined ? { retry_from: String(args['retryFrom']) } : {}),
        });
        if (args.json) return printJson(t);
        process.stdout.write(`${t.id} ${statusColor(t.status)}${t.status === 'pending' ? ` (running again from ${String(args['retryFrom'])})` : ''}\n`);
      }),
    )
    .command(
      'delete <id>',
      'delete a finished task and its files',
      (y) =>
        y
          .positional('id', { type: 'string', demandOption: true })
          .option('force', { type: 'boolean', describe: 'delete even past the guard of 20 deletions a minute' }),
      action(async (args, client) => {
        const r = await client.call('task.delete', { id: String(args['id']), ...(args['force'] ? { force: true } : {}) });
        if (args.json) return printJson(r);
        process.stdout.write(`deleted ${String(args['id'])}\n`);
      }),
    );
}

function simple(method: 'task.resume' | 'task.cancel' | 'task.approve', verb: string) {
  return action(async (args, client) => {
    const t = await client.call(method, { id: String(args['id']) });
    if (args.json) return printJson(t);
    process.stdout.write(`${t.id} ${verb}: now ${statusColor(t.status)}\n`);
  });
}
