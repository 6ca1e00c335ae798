// `atlas events [--since SEQ] [--type T]... [--task ID] [-f] [--json]`: prints the durable
// events log; -f keeps streaming, and when the daemon goes away (a restart) or cuts the stream
// off (a slow reader), it subscribes again after the last seq shown, so nothing is skipped or
// shown twice.
import { setTimeout as sleep } from 'node:timers/promises';
import { AtlasError } from '../errors.js';
import type { AtlasEvent } from '../events/event.js';
import { NOTIFY, type RpcNotification } from '../protocol/protocol.js';
import { connect, withClient, type Cli, type GlobalArgs } from './connect.js';
import { c, fail, info } from './output.js';

type Args = GlobalArgs & { since?: number; type?: string[]; task?: string; follow?: boolean };

export function registerEventsCommand(cli: Cli): Cli {
  return cli.command(
    'events',
    'print task and step events (durable, numbered by seq); -f follows live',
    (y) =>
      y
        .option('since', { type: 'number', describe: 'only events after this seq (default: all; with -f and no --since, from now)' })
        .option('type', { alias: 't', type: 'string', array: true, describe: "only these types; globs allowed ('task.*')" })
        .option('task', { type: 'string', describe: 'only this task' })
        .option('follow', { alias: 'f', type: 'boolean', describe: 'keep streaming new events' }),
    async (args) => {
      if (args.since !== undefined && (!Number.isInteger(args.since) || args.since < 0)) fail(new AtlasError('invalid_input', `--since must be a seq (a whole number >= 0), got ${String(args.since)}`));
      try {
        if (args.follow) await followEvents(args);
        else await printEvents(args);
      } catch (err) {
        fail(err);
      }
    },
  );
}

function filterOf(args: Args): { types?: string[]; task_id?: string } {
  return { ...(args.type?.length ? { types: args.type } : {}), ...(args.task ? { task_id: args.task } : {}) };
}

async function printEvents(args: Args): Promise<void> {
  await withClient(args, async (client) => {
    let since = args.since ?? 0;
    for (let first = true; ; first = false) {
      const page = (await client.call('events.list', { since, limit: 1000, ...filterOf(args) })) as { events: AtlasEvent[]; next_since: number; first_seq: number };
      if (first) notePruned(since, page.first_seq);
      for (const e of page.events) print(e, args);
      if (page.next_since === since) return;
      since = page.next_since;
    }
  });
}

async function followEvents(args: Args): Promise<void> {
  let since: number | undefined = args.since;
  let announced = false;
  for (;;) {
    let cutOff = false;
    const lost = await new Promise<boolean>((resolve, reject) => {
      const onNotify = (n: RpcNotification) => {
        if (n.method === NOTIFY.EVENT) {
          const e = (n.params as { event: AtlasEvent }).event;
          since = e.seq;
          print(e, args);
        } else if (n.method === NOTIFY.EVENT_ERROR) {
          const p = n.params as { message: string; last_seq: number };
          info(c.errDim(`atlas: ${p.message}; resuming`));
          since = p.last_seq;
          cutOff = true;
        }
      };
      connect(args, { onNotify, onClose: () => resolve(true) })
        .then(async (client) => {
          if (announced) info(c.errDim('atlas: reconnected to the daemon'));
          announced = false;
          const r = (await client.call('events.subscribe', { ...(since !== undefined ? { since } : {}), ...filterOf(args) })) as { since: number; first_seq: number };
          if (since !== undefined) notePruned(since, r.first_seq);
          since ??= r.since;
        })
        .catch(reject);
    }).catch((err: unknown) => {
      if (err instanceof AtlasError && err.code === 'daemon_unreachable') return true;
      throw err;
    });
    if (!lost) return;
    if (!cutOff && !announced) {
      info(c.errDim('atlas: lost the daemon; reconnecting...'));
      announced = true;
    }
    await sleep(cutOff ? 0 : 300);
  }
}

/** Says so on stderr when events after `since` are gone (retention pruned them): the output starts later. */
function notePruned(since: number, firstSeq: number): void {
  if (since < firstSeq - 1) info(c.errDim(`atlas: events ${since + 1} to ${firstSeq - 1} were pruned (retention.events_older_than); starting at seq ${firstSeq}`));
}

function print(e: AtlasEvent, args: Args): void {
  if (args.json) {
    process.stdout.write(JSON.stringify(e) + '\n');
    return;
  }
  process.stdout.write(`${c.dim(String(e.seq).padStart(6))}  ${c.dim(e.at)}  ${e.type.padEnd(22)}  ${e.task_id}  ${summary(e)}\n`);
}

function summary(e: AtlasEvent): string {
  const d = e.data;
  switch (e.type) {
    case 'task.status_changed':
      return `${String(d['from'])} -> ${String(d['to'])}${d['reason'] ? c.dim(` (${String(d['reason'])})`) : ''}`;
    case 'step.started':
      return `${String(d['step'])} attempt ${String(d['attempt'])}`;
    case 'step.finished':
      return `${String(d['step'])} attempt ${String(d['attempt'])}: ${String(d['status'])}${d['exit_code'] !== null && d['exit_code'] !== undefined ? ` exit ${String(d['exit_code'])}` : ''}`;
    case 'task.finished':
      return String(d['status']);
    case 'task.awaiting_approval':
      return `step ${String(d['step'])}`;
    case 'task.created':
      return `template ${String(d['template'])} in ${e.workspace}`;
    default:
      return '';
  }
}
