// `atlas __complete -- WORD...`: the candidates for the last word (the one being typed), one
// per line, for the shell scripts `atlas completion bash|zsh|fish` prints. Commands and
// options come from the table in completion-spec.ts; task ids, workspaces and templates from
// the daemon when one runs (never started for this, and given two seconds at most, which only a very busy daemon needs).
// Loads no argument parser and no command module, so a Tab stays quick.
import { AtlasClient } from '../client/client.js';
import { defaultHome } from '../store/paths.js';
import path from 'node:path';
import { COMMANDS, GLOBAL_OPTIONS, type ArgKind } from './completion-spec.js';

type Dynamic = 'task' | 'workspace' | 'template';

export async function complete(words: string[]): Promise<string[]> {
  const cur = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  let home: string | undefined;
  const positionals: string[] = [];
  let pendingValue: string | undefined;
  for (let i = 0; i < before.length; i++) {
    const w = before[i]!;
    if (pendingValue !== undefined) {
      if (pendingValue === 'home') home = w;
      pendingValue = undefined;
      continue;
    }
    if (w.startsWith('-')) {
      const name = w.replace(/^-+/, '');
      if (!name.includes('=') && takesValue(positionals[0], name)) pendingValue = name;
      else if (name.startsWith('home=')) home = name.slice(5);
      continue;
    }
    positionals.push(w);
  }
  const home_ = home ? path.resolve(home) : defaultHome();
  const command = positionals[0];
  const spec = command !== undefined ? COMMANDS[command] : undefined;

  // The value of an option (--workspace <Tab>).
  if (pendingValue !== undefined) {
    const kind = spec?.values?.[pendingValue];
    return filter(kind ? await candidates(kind, home_) : [], cur);
  }
  if (cur.startsWith('-')) {
    const names = [...GLOBAL_OPTIONS, ...(spec?.options ?? [])];
    return filter(names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`)), cur);
  }
  if (command === undefined) return filter(Object.keys(COMMANDS), cur);
  if (!spec) return [];
  const kind = spec.args[positionals.length - 1];
  return filter(kind ? await candidates(kind, home_) : [], cur);
}

function takesValue(command: string | undefined, option: string): boolean {
  if (option === 'home') return true;
  const spec = command !== undefined ? COMMANDS[command] : undefined;
  if (spec?.values?.[option] !== undefined) return true;
  // Options known to take a value without a completable one.
  return ['input', 'i', 'description', 'd', 'priority', 'label', 'l', 'env', 'e', 'limit', 'n', 'step', 'tail', 'reason', 'retry-from', 'path', 'repo', 'branch', 'timeout', 'listen', 'since', 'until', 'text', 'cursor', 'type', 't'].includes(option);
}

function filter(list: readonly string[], prefix: string): string[] {
  return list.filter((s) => s.startsWith(prefix));
}

async function candidates(kind: ArgKind, home: string): Promise<readonly string[]> {
  if (typeof kind !== 'string') return kind;
  if (kind === 'task' || kind === 'workspace' || kind === 'template') return fromDaemon(kind, home);
  return [];
}

async function fromDaemon(kind: Dynamic, home: string): Promise<string[]> {
  let client: AtlasClient | undefined;
  const timeout = new Promise<string[]>((resolve) => setTimeout(() => resolve([]), 2000).unref());
  const ask = (async () => {
    client = await AtlasClient.connect(home, { timeoutMs: 1500 });
    if (kind === 'task') return ((await client.call('task.list', { limit: 200 })) as Array<{ id: string }>).map((t) => t.id);
    if (kind === 'workspace') return ((await client.call('workspace.list', {})) as Array<{ name: string }>).map((w) => w.name);
    return ((await client.call('template.list', {})) as Array<{ name: string }>).map((t) => t.name);
  })().catch(() => [] as string[]);
  try {
    return await Promise.race([ask, timeout]);
  } finally {
    client?.close();
  }
}

/** The scripts `atlas completion SHELL` prints. */
export function completionScript(shell: 'bash' | 'zsh' | 'fish'): string {
  switch (shell) {
    case 'bash':
      return `# atlas completion for bash: eval "$(atlas completion bash)" in ~/.bashrc
_atlas_complete() {
  local IFS=$'\\n'
  COMPREPLY=( $(atlas __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -o default -F _atlas_complete atlas
`;
    case 'zsh':
      return `#compdef atlas
# atlas completion for zsh: eval "$(atlas completion zsh)" in ~/.zshrc (after compinit)
_atlas() {
  local -a candidates
  candidates=("\${(@f)$(atlas __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _atlas atlas
`;
    case 'fish':
      return `# atlas completion for fish: atlas completion fish > ~/.config/fish/completions/atlas.fish
function __atlas_complete
    set -l tokens (commandline -opc) (commandline -ct)
    atlas __complete -- $tokens[2..-1] 2>/dev/null
end
complete -c atlas -f -a '(__atlas_complete)'
`;
    default: {
      const never: never = shell;
      return never;
    }
  }
}
