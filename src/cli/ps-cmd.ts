// atlas ps: what runs now (task, step i/N, how long the step has run, its pid), and the
// "waits for" line `show` prints for a pending task (the workspace's running task, or a slot).
import type { AtlasClient } from '../client/client.js';
import type { RunningTask } from '../daemon/running-tasks.js';
import type { TaskRecord } from '../store/records.js';
import { withClient, type Cli } from './connect.js';
import { c, duration, fail, printJson, table } from './output.js';

export function runningRows(list: RunningTask[], now = Date.now()): string[][] {
  return list.map((t) => [
    t.id,
    t.workspace,
    t.template,
    `${Math.min(t.step_index + 1, t.steps_total)}/${t.steps_total} ${t.step ?? ''}`.trim(),
    t.step_started_at ? duration(now - Date.parse(t.step_started_at)) : '-',
    t.pid !== null ? String(t.pid) : '-',
  ]);
}

export const RUNNING_HEADERS = ['TASK', 'WORKSPACE', 'TEMPLATE', 'STEP', 'ELAPSED', 'PID'];

export function registerPsCommand(cli: Cli): Cli {
  return cli.command(
    'ps',
    'list the tasks running now: step, elapsed time, pid',
    (y) => y,
    async (args) => {
      try {
        const s = await withClient(args, (client) => client.call('daemon.status'));
        if (args.json) return printJson(s.running);
        if (s.running.length === 0) process.stdout.write('nothing is running');
        else process.stdout.write(table(RUNNING_HEADERS, runningRows(s.running)));
        process.stdout.write(`\n${c.dim(`${s.running_tasks} of ${s.max_concurrent_tasks} slots in use, ${s.queue_depth} queued`)}\n`);
      } catch (err) {
        fail(err);
      }
    },
  );
}

/** For a pending task that waits on no dependency: what it waits for (its workspace's running task, or a free slot). */
export async function queueLine(client: AtlasClient, t: TaskRecord): Promise<string[]> {
  if (t.status !== 'pending' || t.waiting_on?.length) return [];
  const s = await client.call('daemon.status').catch(() => undefined);
  if (!s) return [];
  const same = s.running.find((r) => r.workspace === t.workspace && r.id !== t.id);
  if (same) return [`waits for  ${same.id}, running in workspace ${t.workspace} (one task per workspace at a time)`];
  if (s.running_tasks >= s.max_concurrent_tasks) return [`waits for  a free slot: ${s.running_tasks} of ${s.max_concurrent_tasks} tasks running (max_concurrent_tasks)`];
  return [`waits for  its turn in the queue (${s.queue_depth} queued)`];
}
