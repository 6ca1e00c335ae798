// The fast path for the commands people run most often: `atlas list`, `show <id>`,
// `daemon status` and `start <template> -w <ws>`. Loading yargs (and, through it, the width
// tables of its help renderer) and the protocol's schemas costs several times a bare
// `node -e 0`, so these commands, in their plain forms, are parsed here by a strict little
// reader and run by the same bodies the yargs commands run (task-actions.ts,
// daemon-status.ts). Anything this reader does not know exactly (help, an unknown or
// misspelt option, a missing value, --follow, --batch...) returns undefined, and the full CLI
// (app.ts) parses the line instead, with its usual messages.
import { TASK_STATUSES } from '../store/records.js';
import type { Args } from './task-actions.js';

type Kind = 'string' | 'strings' | 'number' | 'boolean';
interface Spec {
  /** Option name as the command's body reads it (yargs' camelCase key). */
  key: string;
  kind: Kind;
  check?: (v: string) => boolean;
}

const GLOBAL: Record<string, Spec> = { '--home': { key: 'home', kind: 'string' }, '--json': { key: 'json', kind: 'boolean' } };

const isNumber = (v: string) => /^-?\d+(\.\d+)?$/.test(v);
const isStatus = (v: string) => (TASK_STATUSES as readonly string[]).includes(v);

/** Options list and start share. */
const COMMON: Record<string, Spec> = {
  '--workspace': { key: 'workspace', kind: 'string' },
  '-w': { key: 'workspace', kind: 'string' },
  '--label': { key: 'label', kind: 'strings' },
  '-l': { key: 'label', kind: 'strings' },
};

const LIST: Record<string, Spec> = {
  ...COMMON,
  '--status': { key: 'status', kind: 'strings', check: isStatus },
  '--active': { key: 'active', kind: 'boolean' },
  '--template': { key: 'template', kind: 'string' },
  '-t': { key: 'template', kind: 'string' },
  '--since': { key: 'since', kind: 'string' },
  '--until': { key: 'until', kind: 'string' },
  '--text': { key: 'text', kind: 'string' },
  '--limit': { key: 'limit', kind: 'number', check: isNumber },
  '-n': { key: 'limit', kind: 'number', check: isNumber },
  '--all': { key: 'all', kind: 'boolean' },
  '--cursor': { key: 'cursor', kind: 'string' },
  '--with-total': { key: 'withTotal', kind: 'boolean' },
};

const START: Record<string, Spec> = {
  ...COMMON,
  '--input': { key: 'input', kind: 'strings' },
  '-i': { key: 'input', kind: 'strings' },
  '--description': { key: 'description', kind: 'string' },
  '-d': { key: 'description', kind: 'string' },
  '--priority': { key: 'priority', kind: 'number', check: isNumber },
  '--after': { key: 'after', kind: 'strings' },
  '--wait': { key: 'wait', kind: 'boolean' },
  '--env': { key: 'env', kind: 'strings' },
  '-e': { key: 'env', kind: 'strings' },
  '--env-clear': { key: 'envClear', kind: 'boolean' },
};

/** Reads `words` against `specs`; undefined on anything it does not know exactly. */
function read(words: string[], specs: Record<string, Spec>): { args: Args; positionals: string[] } | undefined {
  const args: Args = {};
  const positionals: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('-') || w === '-') {
      positionals.push(w);
      continue;
    }
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const name = eq > 0 ? w.slice(0, eq) : w;
    const spec = specs[name] ?? GLOBAL[name];
    if (!spec) return undefined;
    if (spec.kind === 'boolean') {
      if (eq > 0 || args[spec.key] !== undefined) return undefined;
      args[spec.key] = true;
      continue;
    }
    const value = eq > 0 ? w.slice(eq + 1) : words[++i];
    // A value that looks like an option is left to yargs (which may read it differently).
    if (value === undefined || (value.startsWith('-') && !(spec.kind === 'number' && isNumber(value)))) return undefined;
    if (spec.check && !spec.check(value)) return undefined;
    if (spec.kind === 'strings') args[spec.key] = [...((args[spec.key] as string[] | undefined) ?? []), value];
    else if (args[spec.key] !== undefined) return undefined;
    else args[spec.key] = spec.kind === 'number' ? Number(value) : value;
  }
  return { args, positionals };
}

/** The command to run for `argv` by the fast path, or undefined to use the full CLI. */
export function fastCommand(argv: string[]): (() => Promise<void>) | undefined {
  const command = argv.find((w, i) => !w.startsWith('-') && argv[i - 1] !== '--home');
  if (command === undefined) return undefined;
  const at = argv.indexOf(command);
  const words = [...argv.slice(0, at), ...argv.slice(at + 1)];
  switch (command) {
    case 'list': {
      const r = read(words, LIST);
      if (!r || r.positionals.length > 0) return undefined;
      return run('listAction', { limit: 50, ...r.args });
    }
    case 'show': {
      const r = read(words, {});
      if (!r || r.positionals.length !== 1) return undefined;
      return run('showAction', { ...r.args, id: r.positionals[0] });
    }
    case 'start': {
      const r = read(words, START);
      if (!r || r.positionals.length !== 1 || r.args['workspace'] === undefined) return undefined;
      return run('startAction', { ...r.args, template: r.positionals[0] });
    }
    case 'daemon': {
      const r = read(words, {});
      if (!r || r.positionals.length !== 1 || r.positionals[0] !== 'status') return undefined;
      return async () => {
        guardPipes();
        const { daemonStatus } = await import('./daemon-status.js');
        const { fail } = await import('./output.js');
        try {
          await daemonStatus(r.args);
        } catch (err) {
          fail(err);
        }
      };
    }
    default:
      return undefined;
  }
}

function run(body: 'listAction' | 'showAction' | 'startAction', args: Args): () => Promise<void> {
  return async () => {
    guardPipes();
    const actions = await import('./task-actions.js');
    await actions.action(actions[body])(args);
  };
}

/** `atlas list | head` closes our stdout early: that is the reader's choice, not an error (as in app.ts). */
function guardPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}
