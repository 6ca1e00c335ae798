// The atlas CLI: parses arguments (yargs), talks to the daemon through the client, prints.
// It never touches files in the home itself. Exit codes: 0 ok, 1 task ended unsuccessfully,
// 2 bad usage or input, 3 daemon unreachable, 4 not found, 5 not allowed in this status,
// 6 stopped at a human step (--wait/--follow), 7 storage or internal error.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { VERSION } from '../version.js';
import { registerDaemonCommands } from './daemon-cmd.js';
import { registerDashboardCommand } from './dashboard-cmd.js';
import { registerDoctorCommand } from './doctor-cmd.js';
import { registerPsCommand } from './ps-cmd.js';
import { registerEventsCommand } from './events-cmd.js';
import { registerWebhookCommands } from './webhook-cmd.js';
import { registerScheduleCommands } from './schedule-cmd.js';
import { registerMcpCommand } from './mcp-cmd.js';
import { registerHistoryCommands } from './history-cmd.js';
import { registerMemoryCommands } from './memory-cmd.js';
import { registerCompletionCommand } from './completion-cmd.js';
import type { Cli } from './connect.js';
import { EXIT, c } from './output.js';
import { registerTaskCommands } from './task-cmd.js';
import { registerTemplateCommands } from './template-cmd.js';
import { registerWorkspaceCommands } from './workspace-cmd.js';

export function buildCli(argv: string[]): Argv {
  let cli: Cli = yargs(argv)
    .scriptName('atlas')
    .usage('$0 <command> [options]\n\nA crash-proof task engine: runs templates of steps in workspaces, checkpointing after every step.')
    .option('home', { type: 'string', describe: 'the atlas home (default $ATLAS_HOME or ~/.atlas)', global: true })
    .option('json', { type: 'boolean', describe: 'print only JSON on stdout', global: true })
    .version(VERSION)
    .alias('h', 'help')
    .strict()
    .demandCommand(1, 'name a command; atlas --help lists them')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`${y.help() && ''}${c.errRed(`atlas: ${msg}`)}\nRun 'atlas --help' for usage.\n`);
      process.exit(EXIT.USAGE);
    });
  cli = registerDaemonCommands(cli);
  cli = registerWorkspaceCommands(cli);
  cli = registerTemplateCommands(cli);
  cli = registerTaskCommands(cli);
  cli = registerPsCommand(cli);
  cli = registerCompletionCommand(cli);
  cli = registerDoctorCommand(cli);
  cli = registerDashboardCommand(cli);
  cli = registerEventsCommand(cli);
  cli = registerWebhookCommands(cli);
  cli = registerScheduleCommands(cli);
  cli = registerMcpCommand(cli);
  cli = registerHistoryCommands(cli);
  cli = registerMemoryCommands(cli);
  return cli;
}

// `atlas logs ID | head` closes our stdout early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

/**
 * A word like `-foo` before `--`: yargs would read it as the flags -f -o -o (and `-help` as
 * --help, printing help and exiting 0), never as the name it was likely meant to be.
 */
export function dashedWord(argv: readonly string[]): string | undefined {
  for (const a of argv) {
    if (a === '--') return undefined;
    if (/^-[A-Za-z][A-Za-z._-][A-Za-z0-9._-]*$/.test(a)) return a;
  }
  return undefined;
}

export async function runCli(): Promise<void> {
  const argv = hideBin(process.argv);
  const dashed = dashedWord(argv);
  if (dashed !== undefined) {
    process.stderr.write(
      c.errRed(`atlas: ${dashed}: names cannot start with '-' (they start with a letter or digit); an option is one dash and a letter (-w) or two dashes and a word (--workspace)`) + '\n',
    );
    process.exit(EXIT.USAGE);
  }
  await buildCli(argv).parseAsync();
}
