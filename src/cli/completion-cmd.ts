// atlas completion bash|zsh|fish: prints the shell script that completes commands, options,
// task ids, workspaces and templates (through `atlas __complete`, see complete.ts).
import type { Argv } from 'yargs';
import { completionScript } from './complete.js';

export function registerCompletionCommand(cli: Argv): Argv {
  return cli.command(
    'completion <shell>',
    'print the shell completion script (eval "$(atlas completion bash)")',
    (y) => y.positional('shell', { choices: ['bash', 'zsh', 'fish'] as const, demandOption: true }),
    (a) => {
      process.stdout.write(completionScript((a as unknown as { shell: 'bash' | 'zsh' | 'fish' }).shell));
    },
  );
}
