// `atlas daemon reload` and SIGHUP: config.yaml is read again and what can apply live is
// applied at once (the next step, the next task start); the rest is reported as needing a
// restart. User templates are read from disk at every start already, so they are live too.
import type { Config } from '../config/config.js';

/** Settings that apply without a restart. */
export const LIVE: ReadonlyArray<keyof Config> = ['max_concurrent_tasks', 'ai_command', 'step_timeout_ms', 'retries', 'output_cap', 'kill_grace_ms', 'log_level', 'cluster_max_concurrent_tasks', 'retention', 'memory'];

export interface ReloadResult {
  /** Config keys whose value changed. */
  changed: string[];
  /** Of those, applied now. */
  applied: string[];
  /** Of those, in force only after `atlas daemon restart`. */
  needs_restart: string[];
  /** User templates found (they are read at every start). */
  templates: string[];
}

export function diffConfig(current: Config, next: Config): { changed: Array<keyof Config>; live: Array<keyof Config>; restart: Array<keyof Config> } {
  const changed = (Object.keys(next) as Array<keyof Config>).filter((k) => JSON.stringify(current[k]) !== JSON.stringify(next[k]));
  return { changed, live: changed.filter((k) => LIVE.includes(k)), restart: changed.filter((k) => !LIVE.includes(k)) };
}

/** The config.yaml name of a Config key. */
export function configKeyName(k: keyof Config): string {
  const names: Partial<Record<keyof Config, string>> = {
    ai_command: 'ai.command',
    step_timeout_ms: 'step_defaults.timeout',
    retries: 'step_defaults.retries',
    output_cap: 'step_defaults.output_cap',
    kill_grace_ms: 'step_defaults.kill_grace',
    store_url: 'store',
    lease_ttl_ms: 'lease_ttl',
    http: 'http',
  };
  return names[k] ?? k;
}
