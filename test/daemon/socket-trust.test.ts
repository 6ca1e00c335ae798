// Socket impersonation (issue 9 item 7): a socket directory or socket that is not this user's
// own, or is open to others, is refused by the CLI and the daemon with a clear message; the
// home's daemon.lock is 0700.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { socketPathFor } from '../../src/protocol/socket-path.js';
import { TestHome, expectExit } from '../helpers/daemon.js';

describe('an untrusted socket is refused', () => {
  const homes: TestHome[] = [];
  after(async () => {
    for (const h of homes) await h.dispose();
  });

  test('a fallback socket directory open to others, or not ours, is refused by daemon and CLI', async () => {
    // A long home moves the socket to <XDG_RUNTIME_DIR>/atlas-<uid>/; that base is ours here.
    const h = new TestHome({ homeRelative: `${'a'.repeat(60)}/${'b'.repeat(60)}` });
    homes.push(h);
    const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'xdg-'));
    const env = { XDG_RUNTIME_DIR: runtime };
    const prev = process.env['XDG_RUNTIME_DIR'];
    process.env['XDG_RUNTIME_DIR'] = runtime;
    const sock = socketPathFor(h.home);
    if (prev === undefined) delete process.env['XDG_RUNTIME_DIR'];
    else process.env['XDG_RUNTIME_DIR'] = prev;
    assert.ok(sock.startsWith(runtime), sock);
    const dir = path.dirname(sock);
    try {
      fs.mkdirSync(dir, { mode: 0o777 });
      fs.chmodSync(dir, 0o777); // as another user would leave it
      for (const args of [['daemon', 'start'], ['list']]) {
        const r = await h.cli(args, { env });
        assert.notEqual(r.code, 0, `atlas ${args.join(' ')} accepted a 0777 socket directory`);
        assert.match(r.stderr, /refusing the socket directory .*mode is 777/, r.stderr);
      }
      if (process.getuid?.() === 0) {
        fs.chmodSync(dir, 0o700);
        fs.chownSync(dir, 65534, 65534);
        const r = await h.cli(['list'], { env });
        expectExit(r, 3);
        assert.match(r.stderr, /refusing the socket directory .*belongs to uid 65534/, r.stderr);
      }
      // Once it is gone, the daemon makes its own and all is well.
      fs.rmSync(dir, { recursive: true, force: true });
      expectExit(await h.cli(['daemon', 'start'], { env }), 0);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
      expectExit(await h.cli(['list'], { env }), 0);
      await h.cli(['daemon', 'stop'], { env });
    } finally {
      fs.rmSync(runtime, { recursive: true, force: true });
    }
  });

  test('a socket open to others is refused; daemon.lock is 0700', async () => {
    const h = new TestHome();
    homes.push(h);
    await h.startDaemon();
    assert.equal(fs.statSync(path.join(h.home, 'daemon.lock')).mode & 0o777, 0o700);
    fs.chmodSync(h.socketPath, 0o666);
    try {
      const r = await h.cli(['list']);
      expectExit(r, 3);
      assert.match(r.stderr, /refusing the socket .*atlas\.sock: its mode is 666/);
    } finally {
      fs.chmodSync(h.socketPath, 0o600);
    }
    expectExit(await h.cli(['list']), 0);
  });
});
