// config.yaml (DESIGN §8): validated once, at the edge, into a fully defaulted object.
// Unknown keys and bad values are refused with the key's name, the value and what was expected.
import fsp from 'node:fs/promises';
import { lazyYaml } from '../util/lazy-package.js';
import { z } from 'zod';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { parseWebhooks, webhookSchema, type WebhookEndpoint } from '../webhooks/webhook-config.js';
import { durationSchema, parseDuration, retriesSchema } from '../templates/schema.js';
import { parseRetention, retentionSchema, type RetentionConfig } from './retention-config.js';

const configSchema = z
  .object({
    max_concurrent_tasks: z.number().int().min(1).max(1024).optional(),
    ai: z.object({ command: z.string().min(1).optional() }).strict().optional(),
    step_defaults: z
      .object({
        timeout: durationSchema.optional(),
        retries: retriesSchema.optional(),
        output_cap: z.union([z.number().int().min(1024), z.string()]).optional(),
        kill_grace: durationSchema.optional(),
      })
      .strict()
      .optional(),
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
    http: z.object({ listen: z.string().min(1).max(300), allow_remote: z.boolean().optional() }).strict().optional(),
    store: z.string().regex(/^(fs|postgres(ql)?:\/\/.+)$/, "expected 'fs' or a postgres://user@host/db URL").optional(),
    store_schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL name such as atlas').optional(),
    lease_ttl: durationSchema.optional(),
    cluster_max_concurrent_tasks: z.number().int().min(1).max(1_000_000).optional(),
    workspaces: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected workspace names')).optional(),
    webhooks: z.array(webhookSchema).max(100).optional(),
    retention: retentionSchema.optional(),
    memory: z.object({ max_bytes: z.union([z.number().int().min(0), z.string()]).optional() }).strict().optional(),
    daemon_log: z.object({ max_size: z.union([z.number().int().min(4096), z.string()]).optional(), keep: z.number().int().min(1).max(100).optional() }).strict().optional(),
  })
  .strict();

export interface RetryPolicy {
  max: number;
  backoff_ms: number;
  max_backoff_ms: number;
}

export interface Config {
  max_concurrent_tasks: number;
  ai_command: string | null;
  step_timeout_ms: number | null;
  retries: RetryPolicy;
  /** Bytes of output kept per attempt, in the log and the output artifact. */
  output_cap: number;
  /** Time between SIGTERM and SIGKILL when a step is stopped. */
  kill_grace_ms: number;
  log_level: string;
  /** The HTTP listener (DESIGN §11); null when off (the default). */
  http: HttpConfig | null;
  /** A postgres:// URL (from `store:` or ATLAS_STORE_URL), or null for the filesystem store. */
  store_url: string | null;
  store_schema: string;
  /** How long a daemon's lease on a task lasts without a heartbeat (PostgreSQL store). */
  lease_ttl_ms: number;
  /** At most this many tasks run at once across every daemon of the database (null: no
   *  cluster-wide limit; each daemon still runs at most max_concurrent_tasks). */
  cluster_max_concurrent_tasks: number | null;
  /** Workspaces made elsewhere that this daemon may run (name -> its local path, or null for the recorded one). */
  workspaces: Record<string, string | null>;
  /** Webhook endpoints (DESIGN §10). */
  webhooks: WebhookEndpoint[];
  /** What the daemon prunes by itself, daily (DESIGN §14); null: nothing. */
  retention: RetentionConfig | null;
  /** logs/daemon.log rotates past max_bytes, keeping `keep` compressed generations. */
  daemon_log: { max_bytes: number; keep: number };
  /** Workspace memory given to ai steps: at most max_bytes of entries, newest first. */
  memory: { max_bytes: number };
}

export interface HttpConfig {
  host: string;
  port: number;
  allow_remote: boolean;
}

export const DEFAULT_CONFIG: Config = {
  max_concurrent_tasks: 4,
  ai_command: null,
  step_timeout_ms: null,
  retries: { max: 0, backoff_ms: 1000, max_backoff_ms: 60_000 },
  output_cap: 1024 * 1024,
  kill_grace_ms: 5000,
  log_level: 'info',
  http: null,
  store_url: null,
  store_schema: 'atlas',
  lease_ttl_ms: 15_000,
  cluster_max_concurrent_tasks: null,
  workspaces: {},
  webhooks: [],
  retention: null,
  daemon_log: { max_bytes: 10 * 1024 * 1024, keep: 5 },
  memory: { max_bytes: 16 * 1024 },
};

export function retryPolicy(spec: { max: number; backoff?: string | number | undefined; max_backoff?: string | number | undefined } | undefined, fallback: RetryPolicy): RetryPolicy {
  if (!spec) return fallback;
  return {
    max: spec.max,
    backoff_ms: spec.backoff !== undefined ? (parseDuration(spec.backoff) ?? fallback.backoff_ms) : fallback.backoff_ms,
    max_backoff_ms: spec.max_backoff !== undefined ? (parseDuration(spec.max_backoff) ?? fallback.max_backoff_ms) : fallback.max_backoff_ms,
  };
}

function parseSize(v: number | string): number | undefined {
  if (typeof v === 'number') return v;
  const m = /^(\d+)\s*(b|k|kb|kib|m|mb|mib)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase();
  return Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
}

export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = lazyYaml().parse(text) ?? {};
  } catch (err) {
    throw new AtlasError('config_invalid', `${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { details: { file } });
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map((i) => {
      const key = [...i.path, ...(i.code === 'unrecognized_keys' ? [(i as { keys: string[] }).keys.join(', ')] : [])].join('.');
      const what = i.code === 'unrecognized_keys' ? 'unknown key' : i.message;
      return `${key || '(top level)'}: ${what}`;
    });
    throw new AtlasError('config_invalid', `${file}: ${msgs.join('; ')}`, { details: { file, problems: msgs } });
  }
  const c = parsed.data;
  const d = c.step_defaults;
  const cap = d?.output_cap !== undefined ? parseSize(d.output_cap) : DEFAULT_CONFIG.output_cap;
  if (cap === undefined) throw new AtlasError('config_invalid', `${file}: step_defaults.output_cap: expected a size such as 1048576 or '1mb'`);
  return {
    max_concurrent_tasks: c.max_concurrent_tasks ?? DEFAULT_CONFIG.max_concurrent_tasks,
    ai_command: c.ai?.command ?? null,
    step_timeout_ms: d?.timeout !== undefined ? (parseDuration(d.timeout) ?? null) : null,
    retries: retryPolicy(d?.retries, DEFAULT_CONFIG.retries),
    output_cap: cap,
    kill_grace_ms: d?.kill_grace !== undefined ? (parseDuration(d.kill_grace) ?? DEFAULT_CONFIG.kill_grace_ms) : DEFAULT_CONFIG.kill_grace_ms,
    log_level: c.log_level ?? DEFAULT_CONFIG.log_level,
    http: c.http ? httpConfig(c.http.listen, c.http.allow_remote ?? false, `${file}: http.listen`) : null,
    store_url: c.store !== undefined && c.store !== 'fs' ? c.store : null,
    store_schema: c.store_schema ?? DEFAULT_CONFIG.store_schema,
    lease_ttl_ms: c.lease_ttl !== undefined ? (parseDuration(c.lease_ttl) ?? DEFAULT_CONFIG.lease_ttl_ms) : DEFAULT_CONFIG.lease_ttl_ms,
    cluster_max_concurrent_tasks: c.cluster_max_concurrent_tasks ?? null,
    workspaces: Object.fromEntries((c.workspaces ?? []).map((n) => [n, null])),
    webhooks: parseWebhooks(c.webhooks ?? [], file),
    retention: c.retention ? parseRetention(c.retention) : null,
    daemon_log: daemonLog(c.daemon_log, file),
    memory: memoryConfig(c.memory, file),
  };
}

function daemonLog(d: { max_size?: number | string | undefined; keep?: number | undefined } | undefined, file: string): Config['daemon_log'] {
  const max = d?.max_size !== undefined ? parseSize(d.max_size) : DEFAULT_CONFIG.daemon_log.max_bytes;
  if (max === undefined || max < 4096) throw new AtlasError('config_invalid', `${file}: daemon_log.max_size: expected a size of at least 4kb such as '10mb'`);
  return { max_bytes: max, keep: d?.keep ?? DEFAULT_CONFIG.daemon_log.keep };
}

function memoryConfig(m: { max_bytes?: number | string | undefined } | undefined, file: string): Config['memory'] {
  const max = m?.max_bytes !== undefined ? parseSize(m.max_bytes) : DEFAULT_CONFIG.memory.max_bytes;
  if (max === undefined || max > 1024 * 1024) throw new AtlasError('config_invalid', `${file}: memory.max_bytes: expected a size of at most 1mb such as '16kb' (0 gives ai steps no memory)`);
  return { max_bytes: max };
}

/**
 * Checks a listen address ("127.0.0.1:7390", "[::1]:7390", "localhost:0"): a host and a port,
 * and a loopback host unless remote access was allowed on purpose (DESIGN §11).
 */
export function httpConfig(listen: string, allowRemote: boolean, where = 'http.listen'): HttpConfig {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(listen.trim());
  const host = m ? (m[1] ?? m[2] ?? '') : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || !host || !(port >= 0 && port <= 65535)) {
    throw new AtlasError('config_invalid', `${where}: expected host:port such as "127.0.0.1:7390", got ${JSON.stringify(listen)}`);
  }
  if (!allowRemote && !isLoopbackHost(host)) {
    throw new AtlasError('config_invalid', `${where}: ${JSON.stringify(listen)} is not a loopback address; the dashboard and API would be reachable from other machines. Listen on 127.0.0.1, or set http.allow_remote: true on purpose`);
  }
  return { host, port, allow_remote: allowRemote };
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Reads config.yaml; a missing file means all defaults. */
export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { ...DEFAULT_CONFIG };
    throw storageError('read', file, err);
  }
  return parseConfig(text, file);
}
