// Live progress for `start --follow` and `logs -f`: step i/N, elapsed time and the running
// step's output, as the daemon streams them. If the daemon goes away (a restart), it
// reconnects and carries on from the records it has already shown.
import { setTimeout as sleep } from 'node:timers/promises';
import { AtlasClient } from '../client/client.js';
import { AtlasError } from '../errors.js';
import { NOTIFY, type Notification } from '../protocol/methods.js';
import type { TaskRecord, TaskSummary } from '../store/records.js';
import type { LogRecord } from '../store/task-log.js';
import { connect, withClient, type GlobalArgs } from './connect.js';
import { ProgressLine } from './progress.js';
import { c, duration, info, statusColor } from './output.js';

export interface FollowOptions {
  step?: string | undefined;
  /** Print the records already in the log before following (logs -f); start --follow shows only progress from now. */
  history?: boolean;
  /** Print everything as JSON lines instead of text. */
  jsonLines?: boolean;
  quiet?: boolean;
}

/** Follows a task until it settles; resolves with its final summary. Ctrl-C stops following
 *  (the task keeps running) and says how to re-attach; a task left waiting for approval
 *  shows the step's prompt and the approve/reject commands. */
export async function follow(args: GlobalArgs, id: string, options: FollowOptions = {}): Promise<TaskSummary> {
  const progress = new ProgressLine(process.stderr, Boolean(process.stderr.isTTY) && !options.jsonLines);
  const onSigint = () => {
    progress.stop();
    info(`\natlas: stopped following; task ${id} keeps running in the daemon. Re-attach with: atlas logs ${id} -f   (stop it: atlas cancel ${id})`);
    process.exit(130);
  };
  process.on('SIGINT', onSigint);
  try {
    const final = await followLoop(args, id, options, progress);
    progress.stop();
    if (final.status === 'awaiting_approval' && !options.jsonLines) await approvalHint(args, id);
    return final;
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
  }
}

/** What the human step asks, and the commands that answer it. */
async function approvalHint(args: GlobalArgs, id: string): Promise<void> {
  const t = (await withClient(args, (cl) => cl.call('task.get', { id })).catch(() => undefined)) as TaskRecord | undefined;
  const step = t?.steps[t.current_step];
  if (!t || !step) return;
  const prompt = (step.definition as { prompt?: string }).prompt;
  info(`${c.errYellow('waiting for approval')} at step ${step.name}${prompt ? `: ${prompt}` : ''}\n  approve:  atlas approve ${id}\n  reject:   atlas reject ${id} --reason "..." [--retry-from <step>]`);
}

async function followLoop(args: GlobalArgs, id: string, options: FollowOptions, progress: ProgressLine): Promise<TaskSummary> {
  let seen = 0;
  let announcedRetry = false;
  let first = true;
  for (;;) {
    let client: AtlasClient | undefined;
    try {
      const result = await new Promise<TaskSummary | 'lost'>((resolve, reject) => {
        let last: TaskSummary | undefined;
        let index = 0;
        let ended = false;
        // Live records that arrive before the history has been shown (the response and the
        // first notifications often come in one chunk, and the response resolves a promise
        // whose continuation runs later) wait here, so everything is shown in file order.
        let backlog: Notification[] | undefined = [];
        const onNotify = (n: Notification) => {
          if (backlog) {
            backlog.push(n);
            return;
          }
          if (n.method === NOTIFY.LOG && n.params.record['transient'] === true) {
            // Not in task.log (why a task does not move: a full disk...): shown, never counted.
            render(n.params.record, last, options, progress);
          } else if (n.method === NOTIFY.LOG) {
            index++;
            if (index > seen) {
              seen = index;
              render(n.params.record, last, options, progress);
            }
          } else if (n.method === NOTIFY.TASK) {
            last = n.params.task;
          } else if (n.method === NOTIFY.END) {
            ended = true;
            client?.close();
            resolve(last ?? ({} as TaskSummary));
          }
        };
        // Only the first connection may start the daemon: once following, a daemon that goes
        // away was stopped or crashed, and a follower waits for it to come back, never starts it.
        connect(args, { onNotify, onClose: () => !ended && resolve('lost'), autostart: first })
          .then(async (cl) => {
            client = cl;
            if (announcedRetry) info(c.errDim('atlas: reconnected to the daemon'));
            announcedRetry = false;
            const r = await cl.call('task.logs', { id, follow: true, ...(options.step ? { step: options.step } : {}) });
            last ??= r.task;
            for (const rec of r.records) {
              index++;
              if (index > seen) {
                seen = index;
                if (options.history !== false || !first) render(rec, last, options, progress);
              }
            }
            // Live notifications counted after the history; keep the counter in file order.
            first = false;
            const held = backlog ?? [];
            backlog = undefined;
            for (const n of held) onNotify(n);
          })
          .catch(reject);
      });
      if (result !== 'lost') return result;
    } catch (err) {
      if (!(err instanceof AtlasError && err.code === 'daemon_unreachable')) throw err;
    } finally {
      client?.close();
    }
    if (!announcedRetry) info(c.errDim('atlas: lost the daemon; reconnecting...'));
    announcedRetry = true;
    first = false;
    await sleep(300);
  }
}

function render(r: LogRecord, task: TaskSummary | undefined, o: FollowOptions, progress: ProgressLine): void {
  if (o.jsonLines) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const total = task?.steps_total ?? '?';
  if (r.event === 'output') progress.output();
  else progress.beforePrint();
  switch (r.event) {
    case 'output':
      if (!o.quiet) process.stdout.write(String(r['text'] ?? ''));
      return;
    case 'step_started': {
      const label = `step ${Number(r['step_index']) + 1}/${total} ${String(r['step'])}`;
      process.stderr.write(c.errDim(`▶ ${label} (${String(r['type'])}${Number(r['attempt']) > 1 ? `, attempt ${String(r['attempt'])}` : ''})`) + '\n');
      const at = typeof r.time === 'string' ? Date.parse(r.time) : NaN;
      if (r['type'] !== 'human') progress.stepStarted(label, Number.isFinite(at) ? at : Date.now());
      return;
    }
    case 'step_finished': {
      progress.stepEnded();
      if (r['awaiting_approval'] === true) {
        process.stderr.write(`${c.errYellow('⏸')} ${String(r['step_name'])} ${c.errYellow('waiting for approval')}\n`);
        return;
      }
      const ok = r['status'] === 'completed';
      const mark = ok ? c.green('✓') : c.red('✗');
      const took = duration(Number(r['duration_ms']));
      process.stderr.write(`${mark} ${String(r['step_name'])} ${ok ? '' : `${String(r['status'])} `}${c.errDim(took)}${r['error'] ? ` ${c.errRed(String(r['error']))}` : ''}${r['output_truncated'] ? c.errDim(' (output truncated)') : ''}\n`);
      return;
    }
    case 'step_retry':
      process.stderr.write(c.errDim(`↻ ${String(r['step'])} retries in ${duration(Number(r['delay_ms']))} (attempt ${String(r['next_attempt'])})`) + '\n');
      return;
    case 'step_reattached':
      process.stderr.write(c.errDim(`↺ ${String(r['step'])}: re-attached to its process (pid ${String(r['pid'])}), which kept running while no daemon watched`) + '\n');
      return;
    case 'output_truncated':
      process.stderr.write(c.errDim(`… ${String(r['message'])}`) + '\n');
      return;
    case 'transition':
      process.stderr.write(`${c.errDim('●')} ${statusColor(String(r['to_status']))} ${c.errDim(String(r['reason'] ?? ''))}\n`);
      return;
    case 'engine_error':
      process.stderr.write(c.errYellow(`⚠ ${String(r['message'])}`) + '\n');
      return;
    case 'step_interrupted':
      process.stderr.write(c.errDim(`⚠ ${String(r['step'])} attempt ${String(r['attempt'])} was interrupted; running it again`) + '\n');
      return;
    default:
      return;
  }
}
