// `webhooks:` in config.yaml (DESIGN §10): validated once, into fully defaulted endpoints.
// Only http and https URLs; the secret is a Standard Webhooks secret (`whsec_` + base64) of at
// least 24 bytes; names follow the usual name rule. Timings are tunable per endpoint (tests
// use short ones): per-attempt timeout (15 s), backoff base and ceiling, how long to retry
// (at least 24 h by default: 26 h), and how many requests may be in flight at once.
import { z } from 'zod';
import { AtlasError } from '../errors.js';
import { isValidName } from '../store/names.js';
import { durationSchema, parseDuration } from '../templates/schema.js';

export const webhookSchema = z
  .object({
    name: z.string(),
    url: z.string(),
    secret: z.string(),
    events: z.array(z.string().min(1).max(100)).min(1).max(50).optional(),
    timeout: durationSchema.optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    backoff: durationSchema.optional(),
    max_backoff: durationSchema.optional(),
    retry_for: durationSchema.optional(),
  })
  .strict();

export type WebhookInput = z.infer<typeof webhookSchema>;

export interface WebhookEndpoint {
  name: string;
  url: string;
  /** The whole `whsec_...` string, as the receiver's verifier takes it. */
  secret: string;
  /** The HMAC key: the secret's base64 part, decoded. */
  key: Buffer;
  events: string[];
  timeout_ms: number;
  concurrency: number;
  backoff_ms: number;
  max_backoff_ms: number;
  retry_for_ms: number;
}

export const WEBHOOK_DEFAULTS = { timeout_ms: 15_000, concurrency: 4, backoff_ms: 5_000, max_backoff_ms: 2 * 3600_000, retry_for_ms: 26 * 3600_000 };
const MIN_SECRET_BYTES = 24;

export function parseWebhooks(list: WebhookInput[], where: string): WebhookEndpoint[] {
  const seen = new Set<string>();
  return list.map((w, i) => {
    const at = `${where}: webhooks[${i}]`;
    if (!isValidName(w.name)) throw new AtlasError('config_invalid', `${at}.name: ${JSON.stringify(w.name)} is not a valid name (lowercase letters, digits, . _ -)`);
    if (seen.has(w.name)) throw new AtlasError('config_invalid', `${at}.name: ${w.name} is used twice`);
    seen.add(w.name);
    let url: URL;
    try {
      url = new URL(w.url);
    } catch {
      throw new AtlasError('config_invalid', `${at}.url: ${JSON.stringify(w.url)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AtlasError('config_invalid', `${at}.url: only http and https URLs are allowed, not ${url.protocol}`);
    if (!w.secret.startsWith('whsec_')) throw new AtlasError('config_invalid', `${at}.secret: expected a Standard Webhooks secret, 'whsec_' followed by base64 (for example: whsec_$(openssl rand -base64 32))`);
    const b64 = w.secret.slice('whsec_'.length);
    const key = Buffer.from(b64, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || key.length < MIN_SECRET_BYTES) {
      throw new AtlasError('config_invalid', `${at}.secret: the secret must be base64 of at least ${MIN_SECRET_BYTES} random bytes (this one is ${key.length}); make one with: echo whsec_$(openssl rand -base64 32)`);
    }
    const ms = (v: string | number | undefined, d: number) => (v === undefined ? d : (parseDuration(v) ?? d));
    const backoff = ms(w.backoff, WEBHOOK_DEFAULTS.backoff_ms);
    return {
      name: w.name,
      url: url.toString(),
      secret: w.secret,
      key,
      events: w.events ?? ['*'],
      timeout_ms: ms(w.timeout, WEBHOOK_DEFAULTS.timeout_ms),
      concurrency: w.concurrency ?? WEBHOOK_DEFAULTS.concurrency,
      backoff_ms: backoff,
      max_backoff_ms: Math.max(backoff, ms(w.max_backoff, WEBHOOK_DEFAULTS.max_backoff_ms)),
      retry_for_ms: ms(w.retry_for, WEBHOOK_DEFAULTS.retry_for_ms),
    };
  });
}
