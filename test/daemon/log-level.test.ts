// config.yaml's log_level is applied from the daemon's start (it was validated, never used):
// at `warn` the daemon's own info lines ('daemon ready') stay out of logs/daemon.log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TestHome } from '../helpers/daemon.js';

function daemonLogMessages(h: TestHome): string[] {
  const file = path.join(h.home, 'logs', 'daemon.log');
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => String((JSON.parse(l) as { msg?: string }).msg));
}

test('log_level from config.yaml applies at start', async () => {
  const quiet = new TestHome();
  const normal = new TestHome();
  try {
    fs.mkdirSync(quiet.home, { recursive: true });
    fs.writeFileSync(path.join(quiet.home, 'config.yaml'), 'log_level: warn\n');
    await Promise.all([quiet.startDaemon(), normal.startDaemon()]);
    await Promise.all([quiet.stopDaemon(), normal.stopDaemon()]);
    assert.ok(daemonLogMessages(normal).includes('daemon ready'), 'at the default level the ready line is logged');
    assert.ok(!daemonLogMessages(quiet).includes('daemon ready'), 'at warn no info line is logged');
  } finally {
    await Promise.all([quiet.dispose(), normal.dispose()]);
  }
});
