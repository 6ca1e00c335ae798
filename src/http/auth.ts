// Who may use the HTTP listener (DESIGN §11). One secret, $ATLAS_HOME/http.token (0600, made
// at first use), proves access in two ways:
//   - as a bearer token (`Authorization: Bearer <token>`), for scripts and Prometheus;
//   - as a session cookie, set by a one-time login URL that `atlas dashboard` asks for.
// Login codes are random, single use, and live 10 minutes in this process only. Session
// cookies and CSRF tokens are derived from the secret with HMAC (`v1.<issued>.<nonce>.<mac>`),
// so they survive a daemon restart, need no storage, and all die when the token file is
// replaced. The CSRF token is bound to the session: another session's token is refused.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import { AtlasError, errnoCode, storageError } from '../errors.js';

const LOGIN_CODE_TTL_MS = 10 * 60_000;
const SESSION_TTL_MS = 7 * 24 * 3600_000;
const MAX_OPEN_CODES = 64;

export interface Session {
  id: string;
  csrf: string;
  issued_at: number;
}

/** Reads the token file, or makes it (0600, exclusive create) when there is none. */
export async function loadOrCreateToken(file: string): Promise<string> {
  try {
    const st = await fsp.stat(file);
    // A token others can read is no secret: tighten it rather than trust it.
    if ((st.mode & 0o077) !== 0) await fsp.chmod(file, 0o600);
    const token = (await fsp.readFile(file, 'utf8')).trim();
    if (token.length >= 32) return token;
    throw new AtlasError('config_invalid', `${file}: the HTTP token is too short (under 32 characters); delete the file and a new one is made`);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') {
      if (err instanceof AtlasError) throw err;
      throw storageError('read', file, err);
    }
  }
  const token = crypto.randomBytes(32).toString('base64url');
  try {
    await fsp.writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
    return token;
  } catch (err) {
    // Another process made it first: use theirs.
    if (errnoCode(err) === 'EEXIST') return loadOrCreateToken(file);
    throw storageError('write', file, err);
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export class HttpAuth {
  private readonly codes = new Map<string, number>();

  constructor(private readonly token: string) {}

  private mac(what: string): string {
    return crypto.createHmac('sha256', this.token).update(what).digest('base64url');
  }

  bearerOk(header: string | undefined): boolean {
    if (!header) return false;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m !== null && same(m[1]!, this.token);
  }

  /** A fresh one-time login code. */
  newLoginCode(now = Date.now()): string {
    for (const [c, exp] of this.codes) if (exp <= now) this.codes.delete(c);
    // Never more than a few open codes: the oldest goes first.
    while (this.codes.size >= MAX_OPEN_CODES) this.codes.delete(this.codes.keys().next().value!);
    const code = crypto.randomBytes(24).toString('base64url');
    this.codes.set(code, now + LOGIN_CODE_TTL_MS);
    return code;
  }

  /** Uses up a login code; returns the session cookie value, or undefined if the code is unknown, used or expired. */
  redeem(code: string, now = Date.now()): string | undefined {
    const exp = this.codes.get(code);
    if (exp === undefined) return undefined;
    this.codes.delete(code);
    if (exp <= now) return undefined;
    const body = `v1.${now}.${crypto.randomBytes(16).toString('base64url')}`;
    return `${body}.${this.mac(`session:${body}`)}`;
  }

  /** The session a cookie value stands for, if it is genuine and not expired. */
  session(cookie: string | undefined, now = Date.now()): Session | undefined {
    if (!cookie) return undefined;
    const parts = cookie.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') return undefined;
    const body = parts.slice(0, 3).join('.');
    if (!same(parts[3]!, this.mac(`session:${body}`))) return undefined;
    const issued = Number(parts[1]);
    if (!Number.isFinite(issued) || now - issued > SESSION_TTL_MS || issued - now > 60_000) return undefined;
    return { id: body, csrf: this.mac(`csrf:${body}`), issued_at: issued };
  }

  csrfOk(session: Session, presented: string | undefined): boolean {
    return presented !== undefined && same(presented, session.csrf);
  }
}

export const SESSION_COOKIE = 'atlas_session';
export const CSRF_HEADER = 'x-atlas-csrf';
export const SESSION_MAX_AGE_S = SESSION_TTL_MS / 1000;
