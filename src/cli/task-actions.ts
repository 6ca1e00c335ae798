// The bodies of the task commands users run most (start, list, show), apart from their yargs
// definitions (task-cmd.ts), so the fast path (fast.ts) can run them without loading yargs.
// What only some runs need (following a task, a batch file) is loaded when they need it.
import fs from 'node:fs';
import path from 'node:path';
import type { AtlasClient } from '../client/client.js';
import { ClientError } from '../client/client.js';
import { isResumable, type TaskRecord, type TaskSummary } from '../store/records.js';
import { withClient, type GlobalArgs } from './connect.js';
import { queueLine } from './ps-cmd.js';
import { exitForTask, ago, c, duration, fail, info, printJson, statusColor, table, warn } from './output.js';
import { editDistance } from '../util/distance.js';
import { parseLabelArgs } from '../engine/labels.js';
import { callerEnvironment, parseInputs, startExtras } from './start-args.js';

export type Args = GlobalArgs & Record<string, unknown>;

/** Runs a command body with a client, mapping errors to exit codes; unknown ids get a hint. */
export function action(fn: (args: Args, client: AtlasClient) => Promise<number | void>) {
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

/** atlas start: one task (or a batch with --batch). */
export async function startAction(args: Args, client: AtlasClient): Promise<number | void> {
  if (args['batch'] !== undefined) {
    if (args['template'] !== undefined) throw new ClientError('invalid_input', 'give a template or --batch FILE, not both', 0);
    const { startBatchCommand } = await import('./batch-cmd.js');
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
    const { follow } = await import('./follow.js');
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
}

/** atlas list: a page of tasks, filtered. */
export async function listAction(args: Args, client: AtlasClient): Promise<void> {
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
    ...(args['archived'] ? { archived: true } : {}),
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
    // Grouped by hand: Intl.NumberFormat loads ICU's locale data, a good part of the command's start.
    const n = { format: (x: number) => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',') };
    info(c.errDim(`showing ${n.format(list.length)} of ${n.format(page.total)}${page.next_cursor ? `; next page: --cursor ${page.next_cursor}` : ''}`));
  }
}

/** atlas show: a task, its steps and attempts. */
export async function showAction(args: Args, client: AtlasClient): Promise<void> {
  const { archived_at, ...t } = await client.call('task.get', { id: String(args['id']) });
  for (const w of t.warnings ?? []) warn(w);
  if (archived_at) info(c.errDim(`atlas: task ${t.id} is archived (since ${archived_at}); 'atlas unarchive ${t.id}' brings it back`));
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
    ...(t.blocked_reason ? [`blocked    ${c.yellow(t.blocked_reason)}`] : await queueLine(client, t)),
    '',
  ];
  const rows = t.steps.map((s, i) => {
    const results = t.step_results.filter((r) => r.step_index === i);
    const last = results.at(-1);
    const mark = i === t.current_step && t.status !== 'completed' ? '>' : ' ';
    // CPU: user + system time of the last attempt's process tree, where the OS reports it.
    const cpu = typeof last?.cpu_ms === 'number' ? duration(last.cpu_ms) : '';
    // Peak resident memory of the last attempt's process tree, sampled while it ran.
    const mem = typeof last?.peak_rss_kb === 'number' ? `${(last.peak_rss_kb / 1024).toFixed(1)} MB` : '';
    return [`${mark}${i + 1}`, s.name, s.type, statusColor(s.status), String(s.attempts), duration(last?.duration_ms), cpu, mem, last?.artifacts.join(', ') ?? '', s.error ? c.red(s.error) : ''];
  });
  process.stdout.write(lines.join('\n') + table(['#', 'STEP', 'TYPE', 'STATUS', 'TRIES', 'TIME', 'CPU', 'MEM', 'ARTIFACTS', 'ERROR'], rows) + '\n');
  if (t.rejections?.length) {
    process.stdout.write(`\nrejections\n${t.rejections.map((r, i) => `  ${i + 1}. ${r.at} ${r.step}: ${r.reason}${r.retry_from ? c.dim(` (ran again from ${r.retry_from})`) : c.dim(' (ended the task)')}`).join('\n')}\n`);
  }
  const step = t.steps[t.current_step];
  if (t.status === 'awaiting_approval' && step) {
    const prompt = (step.definition as { prompt?: string }).prompt;
    process.stdout.write(`\n${c.yellow('waiting for approval')}: ${prompt ?? step.name}\n  atlas approve ${t.id}   |   atlas reject ${t.id} --reason "..." [--retry-from <step>]\n`);
  } else if (isResumable(t.status)) {
    process.stdout.write(`\nresume with: atlas resume ${t.id}   (or: atlas cancel ${t.id})\n`);
  }
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
    const hint = dep && isResumable(dep.status) ? ' (resume or cancel it)' : '';
    parts.push(`${id} ${dep ? statusColor(dep.status) : 'missing'}${hint}`);
  }
  return [`waiting on ${parts.join(', ')}`];
}

