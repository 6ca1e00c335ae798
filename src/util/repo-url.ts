// Whether a --repo argument is a clonable URL (scheme://... or scp-like user@host:path) rather
// than a local directory: a URL is cloned as it is, a directory is resolved against the cwd.
// Never one that starts with '-': git would take it for an option (`-u<command>@host:x`).
export function isRepoUrl(repo: string): boolean {
  return !repo.startsWith('-') && (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s:]+:/.test(repo));
}
