// logs/daemon.log rotates by size (DESIGN §14) with a bounded number of gzip generations:
// with daemon_log {max_size: 4kb, keep: 2}, a daemon that logs a lot keeps daemon.log small,
// daemon.log.1.gz and daemon.log.2.gz, never a third, and every generation is whole JSON lines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { TestHome, waitFor } from '../helpers/daemon.js';

describe('daemon.log rotation', () => {
  let h: TestHome;
  before(async () => {
    h = new TestHome();
    fs.mkdirSync(h.home, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(h.home, 'config.yaml'), 'daemon_log:\n  max_size: 4kb\n  keep: 2\n');
    await h.startDaemon();
  });
  after(async () => {
    await h?.dispose();
  });

  test('rotates past max_size, keeps `keep` compressed generations', async () => {
    const logs = path.join(h.home, 'logs');
    const c = await h.client();
    // Each reload writes a line of a few hundred bytes: enough for several rotations.
    for (let i = 0; i < 120; i++) await c.call('daemon.reload');
    await waitFor('two compressed generations and no leftover', () => {
      const names = fs.readdirSync(logs);
      return names.includes('daemon.log.1.gz') && names.includes('daemon.log.2.gz') && !names.includes('daemon.log.1') && !names.some((n) => n.includes('.tmp-'));
    });
    const names = fs.readdirSync(logs).sort();
    assert.deepEqual(names, ['daemon.log', 'daemon.log.1.gz', 'daemon.log.2.gz']);
    assert.ok(fs.statSync(path.join(logs, 'daemon.log')).size < 8 * 1024, 'daemon.log grew past its limit');
    for (const g of ['daemon.log.1.gz', 'daemon.log.2.gz']) {
      const text = zlib.gunzipSync(fs.readFileSync(path.join(logs, g))).toString('utf8');
      const lines = text.split('\n').filter(Boolean);
      assert.ok(lines.length > 3);
      for (const l of lines) JSON.parse(l);
      assert.ok(text.length >= 4096, `${g} holds ${text.length} bytes, less than a whole generation`);
      assert.equal(fs.statSync(path.join(logs, g)).mode & 0o777, 0o600);
    }
  });
});
