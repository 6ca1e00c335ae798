// Where the control socket lives. Unix socket paths are limited to about 107 bytes; when
// $ATLAS_HOME/atlas.sock is longer, daemon and client both use the same fallback, named by
// a hash of the home, in a 0700 directory of this user's under $XDG_RUNTIME_DIR or /tmp.
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

export const SOCKET_PATH_LIMIT = 100;

export function socketPathFor(home: string): string {
  const direct = path.join(path.resolve(home), 'atlas.sock');
  if (Buffer.byteLength(direct) <= SOCKET_PATH_LIMIT) return direct;
  return path.join(fallbackSocketDir(), `${crypto.createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 24)}.sock`);
}

export function fallbackSocketDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const xdg = process.env['XDG_RUNTIME_DIR'];
  const base = xdg && xdg.length > 0 && Buffer.byteLength(xdg) < 60 ? xdg : os.tmpdir().length < 60 ? os.tmpdir() : '/tmp';
  return path.join(base, `atlas-${uid}`);
}
