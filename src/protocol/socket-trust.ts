// Trusting the control socket: it and the directory it lives in must belong to this user and
// be reachable by no one else (directory 0700, socket 0600). Otherwise another local user
// could have made the directory (a fallback under /tmp) and put their own socket there,
// answering our CLI and capturing every request. Daemon and client both refuse, saying why.
import fs from 'node:fs';
import path from 'node:path';
import { AtlasError } from '../errors.js';

const uid = (): number | undefined => (typeof process.getuid === 'function' ? process.getuid() : undefined);

function refuse(what: string, p: string, why: string): never {
  throw new AtlasError('daemon_unreachable', `refusing the ${what} ${p}: ${why}; remove it (or fix its owner and mode) and try again`, { details: { path: p, errno: 'EUNTRUSTED' } });
}

/** Checks the socket's directory: a real directory of ours, 0700. Missing is fine. */
export function assertTrustedSocketDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return; // missing (made by the daemon, 0700) or out of reach (connect says so)
  }
  const me = uid();
  if (!st.isDirectory()) refuse('socket directory', dir, 'it is not a directory');
  if (me !== undefined && st.uid !== me) refuse('socket directory', dir, `it belongs to uid ${st.uid}, not to you (uid ${me})`);
  if ((st.mode & 0o077) !== 0) refuse('socket directory', dir, `its mode is ${(st.mode & 0o777).toString(8)}, open to other users (it must be 700)`);
}

/** Checks the socket, and its directory when that is a shared fallback (not the home, which
 *  the daemon makes 0700 itself). Missing is fine (the daemon is not running). */
export function assertTrustedSocket(socketPath: string, home: string): void {
  if (path.dirname(socketPath) !== path.resolve(home)) assertTrustedSocketDir(path.dirname(socketPath));
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  const me = uid();
  if (!st.isSocket()) refuse('socket', socketPath, 'it is not a socket');
  if (me !== undefined && st.uid !== me) refuse('socket', socketPath, `it belongs to uid ${st.uid}, not to you (uid ${me})`);
  if ((st.mode & 0o077) !== 0) refuse('socket', socketPath, `its mode is ${(st.mode & 0o777).toString(8)}, open to other users (it must be 600)`);
}
