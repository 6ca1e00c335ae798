// Task commands: start, list, show, logs, artifacts, resume, cancel, approve, reject, delete.
import fs from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import type { AtlasClient } from '../client/client.js';
import { ClientError } from '../client/client.js';
import { TASK_STATUSES, type TaskRecord, type TaskSummary } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { withClient, type GlobalArgs } from './connect.js';
import { follow } from './follow.js';
import { queueLine } from './ps-cmd.js';
import { exitForTask, ago, c, duration, fail, info, printJson, statusColor, table, warn } from './output.js';
import { editDistance } from '../util/distance.js';
import { parseLabelArgs } from '../engine/labels.js';
import { startBatchCommand } from './batch-cmd.js';
import { callerEnvironment, parseInputs, startExtras } from './start-args.js';
import { formatRecord } from './log-format.js';

type Args = GlobalArgs & Record<string, unknown>;

/** Runs a command body with a client, mapping errors to exit codes; unknown ids get a hint. */
function action(fn: (args: Args, client: AtlasClient) => Promise<number | void>) {
  return async (a: unknown) => {
    const args = a as Args;
    let code: number | void = 0;
    try {
      code = await withClient(args, async (client) => {
        try {
          return await fn(args, client);
        } catch (err) {
          if (err instanceof ClientError && err.code === 'not_found' && typeof args['id'] === 'string') {
            const hint = await closestId(client, args['id']);
            // Only when the task itself was not found: a missing step or artifact of a real task is
            // not helped by naming that task again.
            if (hint && hint !== args['id']) throw new ClientError(err.code, `${err.message} (did you mean ${hint}?)`, err.rpcCode);
          }
          throw err;
        }
      });
    } catch (err) {
      fail(err);
    }
    if (typeof code === 'number' && code !== 0) process.exit(code);
  };
}

async function closestId(client: AtlasClient, id: string): Promise<string | undefined> {
  const list = await client.call('task.list', { limit: 500 }).catch(() => []);
  let best: { id: string; d: number } | undefined;
  for (const t of list) {
    const d = editDistance(id, t.id);
    if (!best || d < best.d) best = { id: t.id, d };
  }
  return best && best.d <= Math.max(3, Math.floor(id.length / 4)) ? best.id : undefined;
}

const ended = (t: { status: string }) => exitForTask(t.status);

export function registerTaskCommands(cli: Argv): Argv {
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
      action(async (args, client) => {
        if (args['batch'] !== undefined) {
          if (args['template'] !== undefined) throw new ClientError('invalid_input', 'give a template or --batch FILE, not both', 0);
          return startBatchCommand(args, client, String(args['batch']));
        }
        if (args['template'] === undefined || args['workspace'] === undefined) throw new ClientError('invalid_input', 'atlas start <template> -w <workspace> (or atlas start --batch FILE.yaml)', 0);
        const tpl = String(args['template']);
        const isFile = tpl.includes('/') || /\.ya?ml$/.test(tpl);
        if (isFile && !fs.existsSync(tpl)) throw new ClientError('not_found', `no template file ${tpl}`, 0);
        const task = await client.call('task.start', {
          ...(isFile ? { template_file: path.resolve(tpl) } : { template: tpl }),
          workspace: String(args['workspace']),
          inputs: parseInputs(args['input']),
          ...(args['description'] !== undefined ? { description: String(args['description']) } : {}),
          ...(args['priority'] !== undefined ? { priority: Number(args['priority']) } : {}),
          env: callerEnvironment(args['env'], Boolean(args['envClear'])),
          ...startExtras(args),
        });
        if (args['follow']) {
          if (!args.json) info(`${c.bold(task.id)}: ${task.template} in ${task.workspace}, ${task.steps.length} steps`);
          const final = await follow(args, task.id, { history: true, quiet: Boolean(args.json) });
          const full = await client.call('task.get', { id: task.id });
          if (args.json) printJson(full);
          else info(`${c.bold(task.id)} ${statusColor(full.status)}${full.error ? `: ${full.error}` : ''}`);
          return ended(final.status ? final : full);
        }
        if (args['wait']) {
          const final = await client.call('task.wait', { id: task.id });
          if (args.json) printJson(final);
          else process.stdout.write(`${final.id} ${statusColor(final.status)}${final.error ? `: ${final.error}` : ''}\n`);
          return ended(final);
        }
        if (args.json) printJson(task);
        else process.stdout.write(`${task.id}\n`);
        if (!args.json && task.waiting_on?.length) info(c.errDim(`waiting on ${task.waiting_on.join(', ')}`));
        if (!args.json) info(c.errDim(`started ${task.template} in ${task.workspace}; 'atlas logs ${task.id} -f' follows it`));
      }),
    )
    .command(
      'list',
      'list tasks, newest first, with filters and paging',
      (y) =>
        y
          .option('workspace', { alias: 'w', type: 'string' })
          .option('status', { type: 'string', array: true, choices: TASK_STATUSES as unknown as string[], describe: 'only tasks in this status (repeatable)' })
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
          .example('$0 list --status failed --since 7d --text timeout', "last week's failures that mention a timeout")
          .example('$0 list -l team=infra --all --json', 'every task labelled team=infra, as JSON'),
      action(async (args, client) => {
        let labels: Record<string, string> = {};
        try {
          labels = parseLabelArgs(((args['label'] as string[] | undefined) ?? []).map(String));
        } catch (err) {
          throw new ClientError('invalid_input', (err as Error).message, 0);
        }
        const page = await client.call('task.query', {
          ...(args['workspace'] ? { workspace: String(args['workspace']) } : {}),
          ...statusFilter(args['status'], Boolean(args['active'])),
          ...(args['template'] ? { template: String(args['template']) } : {}),
          ...(Object.keys(labels).length ? { labels } : {}),
          ...(args['since'] !== undefined ? { since: String(args['since']) } : {}),
          ...(args['until'] !== undefined ? { until: String(args['until']) } : {}),
          ...(args['text'] !== undefined ? { text: String(args['text']) } : {}),
          ...(args['cursor'] !== undefined ? { cursor: String(args['cursor']) } : {}),
          ...(args['all'] ? {} : { limit: Number(args['limit']) }),
        });
        const list = page.tasks;
        // No task, and no such workspace (a removed one whose history was kept still lists): say so.
        if (page.total === 0 && args['workspace']) await client.call('workspace.get', { name: String(args['workspace']) });
        if (args.json) {
          if (args['withTotal']) printJson(page);
          else printJson(list);
        } else if (list.length === 0) {
          process.stdout.write(page.total === 0 ? "no tasks; start one with 'atlas start <template> -w <workspace>'\n" : 'no more tasks\n');
        } else {
          // A shared store lists every daemon's tasks, with the daemon that runs each (or none).
          const shared = list.some((t) => 'daemon' in t);
          const owner = (t: (typeof list)[number]) => ((t as { daemon?: string | null }).daemon ?? '-');
          process.stdout.write(
            table(
              ['ID', 'STATUS', 'TEMPLATE', 'WORKSPACE', 'STEP', 'CREATED', ...(shared ? ['DAEMON'] : [])],
              list.map((t) => [t.id, statusColor(t.status), t.template, t.workspace, t.waiting_on?.length ? `waiting on ${t.waiting_on.length}` : `${Math.min(t.current_step + 1, t.steps_total)}/${t.steps_total} ${t.current_step_name ?? ''}`.trim(), ago(t.created_at), ...(shared ? [owner(t)] : [])]),
            ) + '\n',
          );
        }
        if (!(args.json && args['withTotal'])) {
          const n = new Intl.NumberFormat('en-US');
          info(c.errDim(`showing ${n.format(list.length)} of ${n.format(page.total)}${page.next_cursor ? `; next page: --cursor ${page.next_cursor}` : ''}`));
        }
      }),
    )
    .command(
      'show <id>',
      'show a task: its steps, attempts and result',
      (y) => y.positional('id', { type: 'string', demandOption: true }),
      action(async (args, client) => {
        const t = await client.call('task.get', { id: String(args['id']) });
        for (const w of t.warnings ?? []) warn(w);
        if (args.json) return printJson(t);
        const lines = [
          `${c.bold(t.id)}  ${statusColor(t.status)}`,
          `template   ${t.template}`,
          `workspace  ${t.workspace} (${t.workdir})`,
          ...(t.description ? [`about      ${t.description}`] : []),
          ...(Object.keys(t.inputs).length ? [`inputs     ${Object.entries(t.inputs).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`] : []),
          `created    ${t.created_at} (${ago(t.created_at)})${t.completed_at ? `, ended ${t.completed_at}` : ''}`,
          ...(t.error ? [`error      ${c.red(t.error)}`] : []),
          ...(t.labels && Object.keys(t.labels).length ? [`labels     ${Object.entries(t.labels).map(([k, v]) => `${k}=${v}`).join(' ')}`] : []),
          ...(t.after?.length ? [`after      ${t.after.join(', ')}`] : []),
          ...(await waitingLines(client, t)),
          ...(await queueLine(client, t)),
          '',
        ];
        const rows = t.steps.map((s, i) => {
          const results = t.step_results.filter((r) => r.step_index === i);
          const last = results.at(-1);
          const mark = i === t.current_step && t.status !== 'completed' ? '>' : ' ';
          // CPU: user + system time of the last attempt's process tree, where the OS reports it.
          const cpu = typeof last?.cpu_ms === 'number' ? duration(last.cpu_ms) : '';
          return [`${mark}${i + 1}`, s.name, s.type, statusColor(s.status), String(s.attempts), duration(last?.duration_ms), cpu, last?.artifacts.join(', ') ?? '', s.error ? c.red(s.error) : ''];
        });
        process.stdout.write(lines.join('\n') + table(['#', 'STEP', 'TYPE', 'STATUS', 'TRIES', 'TIME', 'CPU', 'ARTIFACTS', 'ERROR'], rows) + '\n');
        if (t.rejections?.length) {
          process.stdout.write(`\nrejections\n${t.rejections.map((r, i) => `  ${i + 1}. ${r.at} ${r.step}: ${r.reason}${r.retry_from ? c.dim(` (ran again from ${r.retry_from})`) : c.dim(' (ended the task)')}`).join('\n')}\n`);
        }
        const step = t.steps[t.current_step];
        if (t.status === 'awaiting_approval' && step) {
          const prompt = (step.definition as { prompt?: string }).prompt;
          process.stdout.write(`\n${c.yellow('waiting for approval')}: ${prompt ?? step.name}\n  atlas approve ${t.id}   |   atlas reject ${t.id} --reason "..." [--retry-from <step>]\n`);
        } else if (['failed', 'validation_failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted'].includes(t.status)) {
          process.stdout.write(`\nresume with: atlas resume ${t.id}   (or: atlas cancel ${t.id})\n`);
        }
      }),
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

const ACTIVE: TaskSummary['status'][] = ['pending', 'running', 'awaiting_approval'];

/** --status (repeatable) and --active, merged into one status list. */
function statusFilter(status: unknown, active: boolean): { status?: TaskSummary['status'][] } {
  const list = [...(Array.isArray(status) ? status : status === undefined ? [] : [status]).map(String), ...(active ? ACTIVE : [])] as TaskSummary['status'][];
  return list.length ? { status: [...new Set(list)] } : {};
}

/** "waiting on" lines for show: each dependency still waited on, with its status. */
async function waitingLines(client: AtlasClient, t: TaskRecord): Promise<string[]> {
  if (t.status !== 'pending' || !t.waiting_on?.length) return [];
  const parts: string[] = [];
  for (const id of t.waiting_on) {
    const dep = await client.call('task.get', { id }).catch(() => undefined);
    const hint = dep && ['failed', 'validation_failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted'].includes(dep.status) ? ' (resume or cancel it)' : '';
    parts.push(`${id} ${dep ? statusColor(dep.status) : 'missing'}${hint}`);
  }
  return [`waiting on ${parts.join(', ')}`];
}

function simple(method: 'task.resume' | 'task.cancel' | 'task.approve', verb: string) {
  return action(async (args, client) => {
    const t = await client.call(method, { id: String(args['id']) });
    if (args.json) return printJson(t);
    process.stdout.write(`${t.id} ${verb}: now ${statusColor(t.status)}\n`);
  });
}
