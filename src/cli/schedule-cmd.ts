// `atlas schedule add NAME --cron "0 3 * * *" [--tz ZONE] TEMPLATE -w WS [-i k=v]... [--missed
// skip|run-once] | list | show NAME | pause NAME | resume NAME | remove NAME` (DESIGN §13).
// The daemon checks and keeps schedules and fires them; this file parses and prints only.
import type { FireRecord } from '../store/schedules.js';
import type { ScheduleDetail, ScheduleInfo } from '../engine/schedules.js';
import { clientCommand, type Cli } from './connect.js';
import { c, info, printJson, statusColor, table } from './output.js';
import { parseInputs } from './start-args.js';


const run = clientCommand;
const localZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

/** A UTC instant shown in the schedule's zone: `2026-11-22 03:00 Europe/Paris`. */
function inZone(iso: string, tz: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(iso));
  const p = (t: string) => parts.find((x) => x.type === t)?.value ?? '';
  const secs = p('second') === '00' ? '' : `:${p('second')}`;
  return `${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')}${secs}`;
}

function fireLine(f: FireRecord, tz: string): string {
  if (f.state === 'skipped' && f.skipped) {
    const n = `${f.skipped.at_least ? 'at least ' : ''}${f.skipped.count}`;
    return `skipped ${n} missed slot(s) ${inZone(f.skipped.first, tz)} .. ${inZone(f.slot, tz)}`;
  }
  return `${f.task_id ?? '-'} ${f.state}${f.kind === 'catch_up' ? ' (run-once after missed slots)' : ''}${f.error ? `: ${f.error}` : ''}`;
}

function printInfo(s: ScheduleInfo): void {
  process.stdout.write(
    [
      `name       ${s.name} (${s.state === 'paused' ? c.yellow('paused') : c.green('active')})`,
      `cron       ${s.cron}  (${s.tz})`,
      `starts     ${s.template} in workspace ${s.workspace}${Object.keys(s.inputs).length ? ` with ${Object.entries(s.inputs).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`,
      `missed     ${s.missed === 'skip' ? 'skip (slots missed while no daemon ran are skipped)' : 'run-once (slots missed while no daemon ran run once)'}`,
    ].join('\n') + '\n',
  );
}

export function registerScheduleCommands(cli: Cli): Cli {
  return cli.command('schedule <command>', 'start a template on a cron schedule: add, list, show, pause, resume, remove', (y) =>
    y
      .command(
        'add <name> <template>',
        'add a schedule: TEMPLATE runs in -w WORKSPACE at every slot of --cron',
        (y) =>
          y
            .positional('name', { type: 'string', demandOption: true, describe: 'the schedule name' })
            .positional('template', { type: 'string', demandOption: true })
            .option('cron', { type: 'string', demandOption: true, describe: 'a cron expression, e.g. "0 3 * * *" (a 6th field in front for seconds)' })
            .option('tz', { type: 'string', describe: `the IANA time zone the cron is read in (default: this shell's, ${localZone()})` })
            .option('workspace', { alias: 'w', type: 'string', demandOption: true })
            .option('input', { alias: 'i', type: 'string', array: true, describe: 'an input, key=value (repeatable)' })
            .option('description', { alias: 'd', type: 'string' })
            .option('missed', { type: 'string', choices: ['skip', 'run-once'], default: 'skip', describe: 'slots that passed while no daemon ran: skip them, or run once for all of them' }),
        run(async (args, client) => {
          const s = await client.call('schedule.add', {
            name: args.name!,
            template: args.template!,
            cron: args.cron!,
            tz: args.tz ?? localZone(),
            workspace: args.workspace!,
            inputs: parseInputs(args.input),
            ...(args.description !== undefined ? { description: args.description } : {}),
            ...(args.missed ? { missed: args.missed } : {}),
          });
          if (args.json) return printJson(s);
          info(`added schedule ${s.name}; next fire ${s.next_fires[0] ? `${inZone(s.next_fires[0], s.tz)} ${s.tz}` : 'never'}`);
        }),
      )
      .command(
        'list',
        'every schedule with its next fire and its last one',
        (y) => y,
        run(async (args, client) => {
          const list = await client.call('schedule.list', {});
          if (args.json) return printJson(list);
          if (list.length === 0) return info("no schedules; 'atlas schedule add' adds one");
          process.stdout.write(
            table(
              ['NAME', 'CRON', 'TZ', 'TEMPLATE', 'WORKSPACE', 'STATE', 'NEXT', 'LAST'],
              list.map((s) => [s.name, s.cron, s.tz, s.template, s.workspace, s.state === 'paused' ? c.yellow('paused') : c.green('active'), s.next_fires[0] ? inZone(s.next_fires[0], s.tz) : '-', s.last_fire ? `${inZone(s.last_fire.slot, s.tz)} ${fireLine(s.last_fire, s.tz)}` : '-']),
            ) + '\n',
          );
        }),
      )
      .command(
        'show <name>',
        'a schedule: its next 5 fire times and its last 10 fires with their tasks',
        (y) => y.positional('name', { type: 'string', demandOption: true }),
        run(async (args, client) => {
          const s: ScheduleDetail = await client.call('schedule.get', { name: args.name! });
          if (args.json) return printJson(s);
          printInfo(s);
          process.stdout.write(`next fires (${s.tz}):\n${s.next_fires.length ? s.next_fires.map((f) => `  ${inZone(f, s.tz)}\n`).join('') : '  none (paused)\n'}`);
          process.stdout.write(`last fires:\n`);
          if (s.fires.length === 0) process.stdout.write('  none yet\n');
          else process.stdout.write(table(['SLOT', 'TASK', 'STATUS'], s.fires.map((f) => [inZone(f.slot, s.tz), fireLine(f, s.tz), f.task_status ? statusColor(f.task_status) : '-'])).replace(/^/gm, '  ') + '\n');
        }),
      )
      .command(
        'pause <name>',
        'stop firing until resumed',
        (y) => y.positional('name', { type: 'string', demandOption: true }),
        run(async (args, client) => {
          const s = await client.call('schedule.pause', { name: args.name! });
          if (args.json) return printJson(s);
          info(`paused schedule ${s.name}`);
        }),
      )
      .command(
        'resume <name>',
        'fire again from now on (slots that passed while paused are not run)',
        (y) => y.positional('name', { type: 'string', demandOption: true }),
        run(async (args, client) => {
          const s = await client.call('schedule.resume', { name: args.name! });
          if (args.json) return printJson(s);
          info(`resumed schedule ${s.name}; next fire ${s.next_fires[0] ? `${inZone(s.next_fires[0], s.tz)} ${s.tz}` : 'never'}`);
        }),
      )
      .command(
        'remove <name>',
        'remove a schedule (the tasks it started stay)',
        (y) => y.positional('name', { type: 'string', demandOption: true }),
        run(async (args, client) => {
          const r = await client.call('schedule.remove', { name: args.name! });
          if (args.json) return printJson(r);
          info(`removed schedule ${r.removed}`);
        }),
      )
      .demandCommand(1, 'name a schedule command: add, list, show, pause, resume, remove'),
  );
}
