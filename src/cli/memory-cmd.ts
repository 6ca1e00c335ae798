// atlas memory add | list | search | remove: a workspace's memory (DESIGN §14), which the ai
// steps of its tasks are given. Each a yargs command; the daemon checks and keeps the entries.
import type { MemoryEntry } from '../store/memory.js';
import { clientCommand, type Cli } from './connect.js';
import { ago, c, printJson, table } from './output.js';

const act = clientCommand;

const KINDS = ['decision', 'note', 'pattern'] as const;

function printEntries(entries: MemoryEntry[], empty: string): void {
  if (entries.length === 0) return void process.stdout.write(`${empty}\n`);
  const oneLine = (t: string) => (t.length > 100 ? `${t.slice(0, 99).replace(/\s+/g, ' ')}…` : t.replace(/\s+/g, ' '));
  process.stdout.write(table(['ID', 'KIND', 'SOURCE', 'ADDED', 'TEXT'], entries.map((e) => [e.id, e.kind, e.source, ago(e.created_at), oneLine(e.text)])) + '\n');
}

export function registerMemoryCommands(cli: Cli): Cli {
  return cli.command('memory <command>', "a workspace's memory: entries given to its ai steps ({{ memory }}, $ATLAS_MEMORY_FILE)", (y) =>
    y
      .option('workspace', { alias: 'w', type: 'string', demandOption: true, describe: 'the workspace' })
      .command(
        'add <text>',
        'add an entry (newest entries are given first)',
        (y) =>
          y
            .positional('text', { type: 'string', demandOption: true, describe: 'what to remember (at most 8 KiB)' })
            .option('kind', { type: 'string', choices: KINDS, default: 'note', describe: 'what sort of entry' })
            .example('$0 memory add -w api "Use pnpm, never npm" --kind decision', 'remember a decision'),
        act(async (args, client) => {
          const e = await client.call('memory.add', { workspace: args.workspace, text: args.text ?? '', ...(args.kind ? { kind: args.kind } : {}) });
          if (args.json) return printJson(e);
          process.stdout.write(`added memory entry ${c.bold(`#${e.id}`)} (${e.kind}) to workspace ${e.workspace}\n`);
        }),
      )
      .command(
        'list',
        "the workspace's entries, oldest first",
        (y) => y,
        act(async (args, client) => {
          const list = await client.call('memory.list', { workspace: args.workspace });
          if (args.json) return printJson(list);
          printEntries(list, `workspace ${args.workspace} has no memory yet; add an entry with 'atlas memory add -w ${args.workspace} "TEXT"'`);
        }),
      )
      .command(
        'search <query>',
        'entries holding every word of QUERY (case-insensitive)',
        (y) => y.positional('query', { type: 'string', demandOption: true }),
        act(async (args, client) => {
          const list = await client.call('memory.search', { workspace: args.workspace, query: args.query ?? '' });
          if (args.json) return printJson(list);
          printEntries(list, `no memory entry of workspace ${args.workspace} matches ${JSON.stringify(args.query)}`);
        }),
      )
      .command(
        'remove <id>',
        'remove an entry',
        (y) => y.positional('id', { type: 'string', demandOption: true, describe: "the entry's number (from memory list)" }),
        act(async (args, client) => {
          const e = await client.call('memory.remove', { workspace: args.workspace, id: String(args.id ?? '').replace(/^#/, '') });
          if (args.json) return printJson(e);
          process.stdout.write(`removed memory entry #${e.id} from workspace ${e.workspace}\n`);
        }),
      )
      .demandCommand(1, 'name a memory command: add, list, search, remove'),
  );
}
