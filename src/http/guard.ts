// The checks every HTTP request passes before any handler sees it (DESIGN §11), and the
// headers every response carries.
//   1. Host must name this listener (a DNS-rebinding page on evil.example that resolves to
//      127.0.0.1 sends Host: evil.example and is refused).
//   2. Origin, when sent, must be this listener's origin; a cross-site fetch is refused.
//   3. Authentication: a bearer token or a genuine session cookie (see auth.ts).
//   4. A state-changing request made with the cookie needs the session's CSRF token in a
//      header. A bearer request needs none: no browser attaches that header by itself.
// Only /healthz skips 3 and 4; /login skips 3 (the one-time code is its proof).
import type http from 'node:http';
import os from 'node:os';
import { isLoopbackHost } from '../config/config.js';
import { CSRF_HEADER, SESSION_COOKIE, type HttpAuth, type Session } from './auth.js';

/** No inline script, no inline style, nothing from another origin, no framing. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/** For artifacts: even if a browser rendered one, it could run nothing and reach nothing. */
export const SANDBOX_CSP = "sandbox; default-src 'none'";

export function securityHeaders(res: http.ServerResponse, csp = CSP): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
}

/** The Host header values that name this listener (host:port, lower case). */
export function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set<string>();
  const add = (h: string) => names.add(`${h.includes(':') ? `[${h}]` : h}:${port}`.toLowerCase());
  if (isLoopbackHost(host)) {
    for (const h of [host, 'localhost', '127.0.0.1', '::1']) add(h);
  } else if (host === '0.0.0.0' || host === '::') {
    // Listening everywhere (allow_remote): the machine's own names and addresses.
    for (const h of ['localhost', '127.0.0.1', '::1', os.hostname()]) add(h);
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) add(a.address);
  } else {
    add(host);
  }
  return names;
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export type Denial = { status: number; code: string; message: string };

export type Access = { ok: true; via: 'bearer' | 'cookie' | 'none'; session: Session | undefined } | ({ ok: false } & Denial);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isStateChanging(req: http.IncomingMessage): boolean {
  return !SAFE_METHODS.has(req.method ?? 'GET');
}

/**
 * Applies the rules above. `public` paths (healthz) need only a valid Host; `login` needs
 * no credential yet.
 */
export function checkAccess(req: http.IncomingMessage, hosts: Set<string>, auth: HttpAuth, kind: 'public' | 'login' | 'private'): Access {
  const host = (req.headers.host ?? '').toLowerCase();
  if (!hosts.has(host)) return { ok: false, status: 421, code: 'bad_host', message: `Host ${JSON.stringify(req.headers.host ?? '')} does not name this listener` };
  if (kind === 'public') return { ok: true, via: 'none', session: undefined };
  const origin = req.headers.origin;
  const lower = origin?.toLowerCase();
  if (lower !== undefined && !(lower.startsWith('http://') && hosts.has(lower.slice('http://'.length)))) {
    return { ok: false, status: 403, code: 'bad_origin', message: `Origin ${JSON.stringify(origin)} is not this listener` };
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') return { ok: false, status: 403, code: 'cross_site', message: 'cross-site requests are refused' };
  if (kind === 'login') return { ok: true, via: 'none', session: undefined };
  if (auth.bearerOk(req.headers.authorization)) return { ok: true, via: 'bearer', session: undefined };
  if (req.headers.authorization !== undefined) return { ok: false, status: 401, code: 'unauthorized', message: 'the bearer token is wrong (it is in $ATLAS_HOME/http.token)' };
  const session = auth.session(parseCookies(req.headers.cookie).get(SESSION_COOKIE));
  if (!session) return { ok: false, status: 401, code: 'unauthorized', message: "log in: run 'atlas dashboard' for a login URL, or send the token from $ATLAS_HOME/http.token as a bearer token" };
  if (isStateChanging(req)) {
    const presented = req.headers[CSRF_HEADER];
    if (!auth.csrfOk(session, typeof presented === 'string' ? presented : undefined)) {
      return { ok: false, status: 403, code: 'csrf', message: `a state-changing request needs the session's CSRF token in the ${CSRF_HEADER} header` };
    }
    // Browsers always send Origin on a POST; a cookie-carrying POST without one is not from our page.
    if (origin === undefined) return { ok: false, status: 403, code: 'bad_origin', message: 'a state-changing request with the session cookie must carry an Origin header' };
  }
  return { ok: true, via: 'cookie', session };
}
