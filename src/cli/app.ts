// The atlas CLI: parses arguments (yargs), talks to the daemon through the client, prints.
// It never touches files in the home itself. Exit codes: 0 ok, 1 task ended unsuccessfully,
// 2 bad usage or input, 3 daemon unreachable, 4 not found, 5 not allowed in this status.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { VERSION } from '../version.js';
import { registerDaemonCommands } from './daemon-cmd.js';
import { registerDashboardCommand } from './dashboard-cmd.js';
import { registerDoctorCommand } from './doctor-cmd.js';
import { registerPsCommand } from './ps-cmd.js';
import { registerEventsCommand } from './events-cmd.js';
import { registerWebhookCommands } from './webhook-cmd.js';
import { registerMcpCommand } from './mcp-cmd.js';
import { registerHistoryCommands } from './history-cmd.js';
import { registerCompletionCommand } from './completion-cmd.js';
import { EXIT, c } from './output.js';
import { registerTaskCommands } from './task-cmd.js';
import { registerTemplateCommands } from './template-cmd.js';
import { registerWorkspaceCommands } from './workspace-cmd.js';

export function buildCli(argv: string[]): Argv {
  let cli: Argv = yargs(argv)
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
  cli = registerMcpCommand(cli);
  cli = registerHistoryCommands(cli);
  return cli;
}

// `atlas logs ID | head` closes our stdout early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

export async function runCli(): Promise<void> {
  await buildCli(hideBin(process.argv)).parseAsync();
}
