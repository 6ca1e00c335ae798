// One delivery attempt, signed per the Standard Webhooks spec: headers webhook-id (the event's
// id, the receiver's idempotency key), webhook-timestamp (seconds) and webhook-signature
// (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's decoded key). The body
// is the event as JSON. Each attempt has a timeout; the response body is read (bounded) and
// dropped. The outcome says what the dispatcher should do next. It runs in the delivery thread
// (delivery-worker.ts), off the daemon's main thread.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { VERSION } from '../version.js';
import type { WebhookEndpoint } from './webhook-config.js';

export interface AttemptOutcome {
  /** 'ok' 2xx; 'gone' 410 (disable the endpoint); 'retry' anything else. */
  kind: 'ok' | 'gone' | 'retry';
  status: number | null;
  error: string | null;
  /** From a Retry-After header, in ms. */
  retry_after_ms: number | null;
  duration_ms: number;
}

export function sign(key: Buffer, id: string, timestamp: number, body: string): string {
  return 'v1,' + crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
}

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** What an attempt needs of its endpoint (what crosses to the delivery thread). */
export type SendTarget = Pick<WebhookEndpoint, 'name' | 'url' | 'key' | 'timeout_ms' | 'concurrency'>;

export function agentFor(ep: Pick<SendTarget, 'url' | 'concurrency'>): http.Agent {
  const options = { keepAlive: true, maxSockets: ep.concurrency };
  return ep.url.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
}

export function attempt(ep: SendTarget, agent: http.Agent, id: string, body: string): Promise<AttemptOutcome> {
  const started = performance.now();
  const timestamp = Math.floor(Date.now() / 1000);
  const url = new URL(ep.url);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Omit<AttemptOutcome, 'duration_ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...o, duration_ms: Math.round(performance.now() - started) });
    };
    const req = mod.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': `atlas/${VERSION}`,
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(ep.key, id, timestamp, body),
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (d: Buffer) => {
          read += d.length;
          if (read > 64 * 1024) res.destroy();
        });
        const finish = () => {
          const retryAfter = parseRetryAfter(res.headers['retry-after']);
          if (status >= 200 && status < 300) done({ kind: 'ok', status, error: null, retry_after_ms: null });
          else if (status === 410) done({ kind: 'gone', status, error: 'the receiver answered 410 Gone', retry_after_ms: null });
          else done({ kind: 'retry', status, error: `HTTP ${status}`, retry_after_ms: retryAfter });
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done({ kind: 'retry', status: null, error: `timed out after ${ep.timeout_ms} ms`, retry_after_ms: null });
    }, ep.timeout_ms);
    req.on('error', (err) => done({ kind: 'retry', status: null, error: err.message, retry_after_ms: null }));
    req.end(body);
  });
}
