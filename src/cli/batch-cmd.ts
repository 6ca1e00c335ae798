// `atlas start --batch FILE.yaml [--follow|--wait] [--json]`: sends the file to the daemon,
// which creates every task or none (errors come back as `file:line: ...`), prints the tasks by
// key, and with --follow shows every task's progress (one line per change: key, id, status,
// step i/N) until all of them settled; exit 0 when all completed, 6 when the rest wait for
// approval, else 1. Following polls through
// task.query, so it rides over a daemon restart (each call reconnects).
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import type { AtlasClient } from '../client/client.js';
import type { BatchResult } from '../engine/batch.js';
import type { TaskSummary } from '../store/records.js';
import { connect, type GlobalArgs } from './connect.js';
import { EXIT, c, info, printJson, statusColor, table } from './output.js';

const MOVING = new Set(['pending', 'running']);

export async function startBatchCommand(args: GlobalArgs & Record<string, unknown>, client: AtlasClient, file: string): Promise<number> {
  const result = await client.call('task.batch', { file: path.resolve(file) });
  const follow = Boolean(args['follow']) || Boolean(args['wait']);
  if (!follow) {
    if (args.json) printJson(result);
    else printBatch(result);
    return EXIT.OK;
  }
  if (!args.json) printBatch(result);
  const final = await followBatch(args, result, Boolean(args['follow']) && !args.json);
  if (args.json) printJson({ tasks: result.tasks.map((t) => ({ key: t.key, task: final.get(t.task.id) ?? t.task })) });
  const ok = [...final.values()].every((t) => t.status === 'completed');
  // Only completed and waiting-for-approval tasks: the batch stopped at a human step (exit 6).
  const waiting = !ok && [...final.values()].every((t) => t.status === 'completed' || t.status === 'awaiting_approval');
  if (!args.json) info(`${ok ? c.green('all completed') : waiting ? c.errYellow('waiting for approval') : c.red('not all completed')}: ${summary(final)}`);
  return ok ? EXIT.OK : waiting ? EXIT.AWAITING_APPROVAL : EXIT.TASK_FAILED;
}

function printBatch(r: BatchResult): void {
  process.stdout.write(
    table(
      ['KEY', 'ID', 'TEMPLATE', 'WORKSPACE', 'AFTER'],
      r.tasks.map(({ key, task }) => [key, task.id, task.template, task.workspace, (task.after ?? []).map((id) => r.tasks.find((x) => x.task.id === id)?.key ?? id).join(', ')]),
    ) + '\n',
  );
}

function summary(tasks: Map<string, { status: string }>): string {
  const counts = new Map<string, number>();
  for (const t of tasks.values()) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

/** Polls the batch's tasks until none is pending or running; prints each change when `print`. */
async function followBatch(args: GlobalArgs, r: BatchResult, print: boolean): Promise<Map<string, TaskSummary>> {
  const keyOf = new Map(r.tasks.map((t) => [t.task.id, t.key]));
  const ids = [...keyOf.keys()];
  const last = new Map<string, string>();
  const now = new Map<string, TaskSummary>();
  let client: AtlasClient | undefined;
  let lostAt: number | undefined;
  for (;;) {
    try {
      client ??= await connect(args);
      // The batch's tasks are the newest around its creation: one query finds them all.
      const page = await client.call('task.query', { since: r.tasks.reduce((m, t) => (t.task.created_at < m ? t.task.created_at : m), r.tasks[0]!.task.created_at) });
      for (const s of page.tasks) if (keyOf.has(s.id)) now.set(s.id, s);
      lostAt = undefined;
    } catch (err) {
      client?.close();
      client = undefined;
      lostAt ??= Date.now();
      if (Date.now() - lostAt > 60_000) throw err;
      if (print) info(c.errDim('lost the daemon; reconnecting'));
    }
    for (const id of ids) {
      const s = now.get(id);
      if (!s) continue;
      const line = `${s.status} ${s.waiting_on?.length ? `waiting on ${s.waiting_on.map((d) => keyOf.get(d) ?? d).join(', ')}` : `${Math.min(s.current_step + 1, s.steps_total)}/${s.steps_total} ${s.current_step_name ?? ''}`}`;
      if (last.get(id) !== line) {
        last.set(id, line);
        if (print) process.stdout.write(`${keyOf.get(id)!.padEnd(16)} ${id}  ${statusColor(s.status)} ${line.slice(s.status.length + 1)}${s.error ? ` ${c.red(s.error)}` : ''}\n`);
      }
    }
    if (ids.every((id) => now.has(id) && !MOVING.has(now.get(id)!.status))) break;
    await sleep(250);
  }
  client?.close();
  return now;
}
