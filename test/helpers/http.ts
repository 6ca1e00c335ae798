// HTTP helpers for the listener tests: raw node:http requests (so a test can send any Host,
// Origin or Cookie header, which fetch forbids), a home with the listener on, a login
// through the one-time URL, and a strict parser for the Prometheus text format.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { TestHome, type HomeOptions } from './daemon.js';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = unknown>(): T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs?: number;
}

export function request(url: string, options: RequestOptions = {}): Promise<HttpResult> {
  const u = new URL(url);
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path: u.pathname + u.search, method: options.method ?? 'GET', headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers }, timeout: options.timeoutMs ?? 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json<T>() {
              try {
                return JSON.parse(text) as T;
              } catch {
                throw new Error(`not JSON (HTTP ${res.statusCode}): ${text.slice(0, 500)}`);
              }
            },
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTP request to ${url} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A free TCP port on 127.0.0.1 (for a daemon that must listen on a port known in advance). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Login {
  url: string;
  login_url: string;
  listen: string;
  started_now: boolean;
}

/** A home whose config turns the listener on (port 0: any free port), with its daemon started. */
export async function homeWithListener(options: HomeOptions & { config?: string } = {}): Promise<{ home: TestHome; base: string; token: string }> {
  const home = new TestHome(options);
  fs.mkdirSync(home.home, { recursive: true });
  fs.writeFileSync(path.join(home.home, 'config.yaml'), options.config ?? 'http:\n  listen: "127.0.0.1:0"\n');
  await home.startDaemon();
  const login = await home.json<Login>(['dashboard']);
  const token = fs.readFileSync(path.join(home.home, 'http.token'), 'utf8').trim();
  return { home, base: login.url, token };
}

/** Logs in through a fresh one-time URL; returns the session cookie ("name=value") and its CSRF token. */
export async function login(home: TestHome): Promise<{ cookie: string; csrf: string; base: string }> {
  const l = await home.json<Login>(['dashboard']);
  const r = await request(l.login_url);
  assert.equal(r.status, 303, `login should redirect: ${r.status} ${r.text}`);
  const set = r.headers['set-cookie']?.[0] ?? '';
  assert.match(set, /HttpOnly/);
  assert.match(set, /SameSite=Strict/);
  const cookie = set.split(';')[0]!;
  const s = await request(`${l.url}/api/session`, { headers: { cookie } });
  assert.equal(s.status, 200, s.text);
  return { cookie, csrf: s.json<{ csrf_token: string }>().csrf_token, base: l.url };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (0.0.4) strictly: every line a comment, HELP, TYPE or a well-formed sample. */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      assert.match(line.split(' ')[2] ?? '', nameRe, `line ${i + 1}: bad HELP: ${line}`);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.match(name ?? '', nameRe, `line ${i + 1}: bad TYPE: ${line}`);
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type ?? ''), `line ${i + 1}: bad type: ${line}`);
      types.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    assert.ok(m, `line ${i + 1} is not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
      let pos = 0;
      for (let lm = re.exec(m[2]); lm; lm = re.exec(m[2])) {
        labels[lm[1]!] = lm[2]!;
        pos = re.lastIndex;
      }
      assert.equal(pos, m[2].length, `line ${i + 1}: bad labels: ${line}`);
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `line ${i + 1}: bad value: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

/** The value of one sample, or undefined. */
export function sample(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: unknown;
}

export interface SseReader {
  status: number;
  events: SseEvent[];
  /** Waits (bounded) until `pred` holds for the events received so far. */
  until(what: string, pred: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

/** Opens a Server-Sent Events stream and collects its events. */
export function openSse(url: string, headers: Record<string, string>): Promise<SseReader> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = [];
      const waiters = new Set<() => void>();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id: string | undefined;
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const [k, ...rest] = line.split(':');
            const v = rest.join(':').replace(/^ /, '');
            if (k === 'id') id = v;
            else if (k === 'event') event = v;
            else if (k === 'data') data.push(v);
          }
          if (data.length) events.push({ id, event, data: JSON.parse(data.join('\n')) as unknown });
        }
        for (const w of waiters) w();
      });
      resolve({
        status: res.statusCode ?? 0,
        events,
        until: (what, pred, timeoutMs = 15_000) =>
          new Promise((ok, fail) => {
            const check = () => {
              if (pred(events)) {
                waiters.delete(check);
                clearTimeout(timer);
                ok(events);
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(events.map((e) => [e.event, e.id])).slice(0, 2000)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}
