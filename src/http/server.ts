// The daemon's opt-in HTTP listener (DESIGN §11): the dashboard at /, the JSON API under
// /api/, /metrics, /healthz and /readyz, on node:http. Every request passes guard.ts first;
// only /healthz is open to anyone who can reach the port (it says only "alive").
//   /healthz   200 while the process serves requests
//   /readyz    200 once recovery has finished and the store answers; 503 before, with why
//   /login?code=…  trades a one-time code from `atlas dashboard` for a session cookie
//   /metrics   Prometheus text format
//   /, /app.js, /app.css   the dashboard, bundled at build time into dist/web (no CDN)
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HttpConfig } from '../config/config.js';
import { AtlasError } from '../errors.js';
import { metricsText } from '../metrics/metrics.js';
import { packageRoot } from '../util/package-root.js';
import { HttpAuth, loadOrCreateToken, SESSION_COOKIE, SESSION_MAX_AGE_S } from './auth.js';
import { serveApi, sendError, sendJson, type ApiContext } from './api.js';
import { allowedHosts, checkAccess, securityHeaders } from './guard.js';

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface ListenerDeps extends ApiContext {
  tokenFile: string;
  log: Logger;
  readiness(): Promise<Readiness>;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

const LOGGED_OUT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>atlas: log in</title></head>
<body><main><h1>atlas</h1><p>This dashboard needs a login. Run <code>atlas dashboard</code> on the machine that runs the daemon and open the one-time URL it prints.</p></main></body></html>`;

export class HttpListener {
  private readonly server: http.Server;
  private hosts = new Set<string>();
  private port = 0;

  private constructor(
    private readonly config: HttpConfig,
    private readonly deps: ListenerDeps,
    readonly auth: HttpAuth,
    private readonly webDir: string,
  ) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        deps.log.error({ err: { message: (err as Error)?.message, stack: (err as Error)?.stack }, url: req.url }, 'http request failed');
        if (!res.headersSent) sendError(res, 500, 'internal', 'internal error');
        else res.destroy();
      });
    });
    // Streams stay open; only the request head has a deadline.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.maxHeadersCount = 100;
  }

  static async start(config: HttpConfig, deps: ListenerDeps): Promise<HttpListener> {
    const auth = new HttpAuth(await loadOrCreateToken(deps.tokenFile));
    const l = new HttpListener(config, deps, auth, path.join(packageRoot(), 'dist', 'web'));
    await new Promise<void>((resolve, reject) => {
      l.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new AtlasError('config_invalid', `http.listen: cannot listen on ${config.host}:${config.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message}`, { cause: err })),
      );
      l.server.listen(config.port, config.host, () => resolve());
    });
    l.port = (l.server.address() as AddressInfo).port;
    l.hosts = allowedHosts(config.host, l.port);
    l.server.on('error', (err) => deps.log.error({ err }, 'http server error'));
    return l;
  }

  /** The base URL, e.g. http://127.0.0.1:7390 */
  get url(): string {
    const h = this.config.host === '0.0.0.0' || this.config.host === '::' ? '127.0.0.1' : this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    return `http://${h}:${this.port}`;
  }

  get address(): { host: string; port: number } {
    return { host: this.config.host, port: this.port };
  }

  loginUrl(): string {
    return `${this.url}/login?code=${this.auth.newLoginCode()}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    securityHeaders(res);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://atlas.invalid');
    } catch {
      return sendError(res, 400, 'bad_request', 'bad request URL');
    }
    const p = url.pathname;
    const kind = p === '/healthz' ? 'public' : p === '/login' ? 'login' : 'private';
    const access = checkAccess(req, this.hosts, this.auth, kind);
    if (!access.ok) {
      // A browser that is simply not logged in gets a page that says how, not JSON.
      if (access.code === 'unauthorized' && req.method === 'GET' && p === '/' && !req.headers.authorization) return this.html(res, 401, LOGGED_OUT);
      return sendError(res, access.status, access.code, access.message);
    }
    if (p === '/healthz') return sendJson(res, 200, { status: 'ok', pid: process.pid });
    if (p === '/readyz') {
      const r = await this.deps.readiness();
      return sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not_ready', ...(r.reason ? { reason: r.reason } : {}) });
    }
    if (p === '/login') return this.login(req, res, url);
    if (p === '/logout' && req.method === 'POST') {
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return sendJson(res, 200, { logged_out: true });
    }
    if (p === '/metrics') {
      const m = await metricsText();
      res.writeHead(200, { 'Content-Type': m.contentType });
      return void res.end(m.body);
    }
    if (p === '/api/session') {
      return sendJson(res, 200, { via: access.via, csrf_token: access.session?.csrf ?? null });
    }
    if (p.startsWith('/api/')) return serveApi(req, res, url, this.deps);
    const asset = ASSETS[p];
    if (asset && (req.method === 'GET' || req.method === 'HEAD')) return this.asset(res, asset.file, asset.type);
    return sendError(res, 404, 'not_found', `nothing at ${p}`);
  }

  private login(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    const cookie = req.method === 'GET' ? this.auth.redeem(url.searchParams.get('code') ?? '') : undefined;
    if (!cookie) return this.html(res, 401, LOGGED_OUT.replace('This dashboard needs a login.', 'That login link was used already, has expired, or is wrong.'));
    res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MAX_AGE_S}`);
    // Redirect so the code leaves the address bar and the history.
    res.writeHead(303, { Location: '/' });
    res.end();
  }

  private html(res: http.ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private async asset(res: http.ServerResponse, file: string, type: string): Promise<void> {
    const full = path.join(this.webDir, file);
    let body: Buffer;
    try {
      body = await fsp.readFile(full);
    } catch {
      return sendError(res, 404, 'not_found', `${file} is missing from ${this.webDir}; run npm run build`);
    }
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length });
    res.end(body);
  }
}

/** True when the dashboard's files were built. */
export function dashboardBuilt(): boolean {
  return fs.existsSync(path.join(packageRoot(), 'dist', 'web', 'app.js'));
}
