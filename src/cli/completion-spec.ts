// What `atlas completion` completes: every command, its options, and what its positional
// arguments are (task ids, workspaces, templates, fixed words). Kept as a plain table so that
// completing on each Tab loads no parser and no command module; test/cli/completion.test.ts
// checks it against every command's --help, so a new command or option must be added here.

export type ArgKind = 'task' | 'workspace' | 'template' | 'file' | 'none' | readonly string[];

export interface CommandSpec {
  /** Options, without the leading dashes; aliases included. */
  options: readonly string[];
  /** What each positional argument is, in order. */
  args: readonly ArgKind[];
  /** Options whose value is a task id, a workspace, a template or one of fixed words. */
  values?: Readonly<Record<string, ArgKind>>;
}

export const GLOBAL_OPTIONS = ['home', 'json', 'help', 'version'] as const;

const TASK_STATUS_WORDS = ['pending', 'running', 'awaiting_approval', 'validation_failed', 'failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted', 'completed', 'rejected', 'abandoned'];

const task: CommandSpec = { options: [], args: ['task'] };

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  start: {
    options: ['workspace', 'w', 'input', 'i', 'description', 'd', 'priority', 'after', 'label', 'l', 'wait', 'follow', 'f', 'env', 'e', 'env-clear', 'batch'],
    args: ['template'],
    values: { workspace: 'workspace', w: 'workspace', after: 'task' },
  },
  list: {
    options: ['workspace', 'w', 'status', 'active', 'template', 't', 'label', 'l', 'since', 'until', 'text', 'limit', 'n', 'all', 'cursor', 'with-total', 'archived'],
    args: [],
    values: { workspace: 'workspace', w: 'workspace', template: 'template', t: 'template', status: TASK_STATUS_WORDS },
  },
  ps: { options: [], args: [] },
  show: task,
  logs: { options: ['follow', 'f', 'step', 'tail'], args: ['task'] },
  artifacts: { options: [], args: ['task', 'none'] },
  resume: task,
  cancel: task,
  approve: task,
  reject: { options: ['reason', 'retry-from'], args: ['task'] },
  delete: { options: ['force'], args: ['task'] },
  workspace: { options: ['path', 'repo', 'branch', 'purge', 'force'], args: [['create', 'list', 'show', 'remove'], 'workspace'] },
  template: { options: [], args: [['list', 'show', 'validate'], 'template'] },
  daemon: { options: ['timeout', 'detach', 'quiet', 'print'], args: [['start', 'stop', 'restart', 'reload', 'status', 'run', 'install-service']] },
  doctor: { options: ['repair', 'clear-quarantine'], args: [] },
  dashboard: { options: ['listen', 'open'], args: [] },
  events: { options: ['since', 'type', 't', 'task', 'follow', 'f'], args: [], values: { task: 'task' } },
  webhook: { options: ['failed'], args: [['list', 'test', 'deliveries']] },
  schedule: {
    options: ['cron', 'tz', 'workspace', 'w', 'input', 'i', 'description', 'd', 'missed'],
    args: [['add', 'list', 'show', 'pause', 'resume', 'remove'], 'none', 'template'],
    values: { workspace: 'workspace', w: 'workspace', missed: ['skip', 'run-once'] },
  },
  mcp: { options: [], args: [] },
  completion: { options: [], args: [['bash', 'zsh', 'fish']] },
  backup: { options: ['verify'], args: ['file'] },
  restore: { options: ['force'], args: ['file'] },
  prune: { options: ['older-than', 'status', 'workspace', 'w', 'dry-run', 'delete', 'force'], args: [], values: { workspace: 'workspace', w: 'workspace', status: TASK_STATUS_WORDS.filter((w) => !['pending', 'running', 'awaiting_approval'].includes(w)) } },
  unarchive: { options: [], args: ['none'] },
  memory: { options: ['workspace', 'w', 'kind'], args: [['add', 'list', 'search', 'remove'], 'none'], values: { workspace: 'workspace', w: 'workspace', kind: ['decision', 'note', 'pattern'] } },
};
