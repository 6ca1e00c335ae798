// atlas completion bash|zsh|fish: prints the shell script that completes commands, options,
// task ids, workspaces and templates (through `atlas __complete`, see complete.ts).
import type { Cli } from './connect.js';
import { completionScript } from './complete.js';

export function registerCompletionCommand(cli: Cli): Cli {
  return cli.command(
    'completion <shell>',
    'print the shell completion script (eval "$(atlas completion bash)")',
    (y) => y.positional('shell', { choices: ['bash', 'zsh', 'fish'] as const, demandOption: true }),
    (args) => {
      process.stdout.write(completionScript(args.shell));
    },
  );
}
