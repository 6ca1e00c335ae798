// What the daemon and its spawner process (spawner-main.ts) say to each other, and the gate
// every step command starts behind.
//
// The gate: `/bin/sh -c GATE atlas-step <command> <status file>`, in a new session (so its
// pgid is its pid). The shell blocks reading a first line, "go", from its standard input
// before it runs anything (the rest of stdin, if any, is the command's), so the engine can
// checkpoint the pid, pgid and start time first and only then say "go". If the daemon (and
// with it the spawner) dies before that, the pipe closes, the read fails and the gate exits
// without side effects. sh's `read` takes one byte at a time from a pipe, so it never eats
// into the command's input.
//
// When the command ends (normally or by `exit`), an EXIT trap writes the exit status and
// `times` (CPU time of the command's reaped process tree) to the status file. The status
// file is how a daemon that was not running when the step ended learns its result. The
// command runs in the gate shell itself (as it always did: `kill $$` ends the step), so a
// shell killed by a signal writes nothing (the spawner reports the signal while it runs),
// and so does a command that `exec`s another program or sets its own EXIT trap: such a step
// that ends while no daemon runs is run again, as before.
export const GATE =
  'IFS= read -r __atlas_go || exit 125; [ "$__atlas_go" = go ] || exit 125; unset __atlas_go; __atlas_cmd=$1; __atlas_st=$2; shift 2; ' +
  `trap '__atlas_rc=$?; { echo "$__atlas_rc"; times; } > "$__atlas_st"; exit "$__atlas_rc"' EXIT; eval "$__atlas_cmd"`;

export type SpawnerRequest =
  | { t: 'spawn'; id: number; command: string; cwd: string; env: NodeJS.ProcessEnv; out: string; err: string; status: string }
  | { t: 'go'; pid: number; stdin?: string | undefined }
  | { t: 'abort'; pid: number };

export type SpawnerReply =
  | { t: 'ready'; pid: number }
  | { t: 'spawned'; id: number; pid: number; start_ticks: number | null }
  | { t: 'spawned'; id: number; error: string; code: string | null }
  | { t: 'exit'; pid: number; code: number | null; signal: NodeJS.Signals | null };
