// `atlas daemon reload` and SIGHUP (issue 18): config.yaml is read again without a restart;
// live settings apply at once (an ai.command added makes ai templates startable), the others
// are reported as needing a restart, and a bad file changes nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, waitFor } from '../helpers/daemon.js';

const AGENT = `name: agent
steps:
  - name: think
    type: ai
    prompt: say hello
`;

describe('daemon reload', () => {
  let h: TestHome;
  let pid: number;

  before(async () => {
    h = new TestHome();
    h.writeTemplate('agent', AGENT);
    pid = await h.startDaemon();
    await h.createWorkspaces(['a']);
  });
  after(async () => {
    await h.dispose();
  });

  test('reload applies ai.command and step defaults at once, reports what needs a restart, and refuses a bad file', async () => {
    const refused = expectExit(await h.cli(['start', 'agent', '-w', 'a']), 2);
    assert.match(refused.stderr, /ai\.command/);

    fs.writeFileSync(path.join(h.home, 'config.yaml'), ['ai:', '  command: cat', 'step_defaults:', '  output_cap: 64kb', 'lease_ttl: 45s'].join('\n') + '\n');
    const r = await h.json<{ changed: string[]; applied: string[]; needs_restart: string[]; templates: string[] }>(['daemon', 'reload']);
    assert.deepEqual(r.changed.sort(), ['ai.command', 'lease_ttl', 'step_defaults.output_cap']);
    assert.deepEqual(r.applied.sort(), ['ai.command', 'step_defaults.output_cap']);
    assert.deepEqual(r.needs_restart, ['lease_ttl']);
    assert.deepEqual(r.templates, ['agent']);
    // The same daemon now runs ai steps with the new command.
    assert.equal((await h.json<{ pid: number }>(['daemon', 'status'])).pid, pid);
    const t = await h.json<TaskRecord>(['start', 'agent', '-w', 'a', '--wait']);
    assert.equal(t.status, 'completed', t.error ?? '');

    // Again: what was applied is no change any more; what needs a restart still does.
    const text = expectExit(await h.cli(['daemon', 'reload']), 0);
    assert.doesNotMatch(text.stdout, /applied now/);
    assert.match(text.stdout, /needs 'atlas daemon restart': lease_ttl/);

    fs.writeFileSync(path.join(h.home, 'config.yaml'), 'max_concurrent_tasks: lots\n');
    const bad = await h.cli(['daemon', 'reload']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /max_concurrent_tasks/);
  });

  test('SIGHUP reloads config.yaml the same way (the result is in the daemon log)', async () => {
    fs.writeFileSync(path.join(h.home, 'config.yaml'), ['ai:', '  command: cat', 'max_concurrent_tasks: 2'].join('\n') + '\n');
    process.kill(pid, 'SIGHUP');
    const log = path.join(h.home, 'logs', 'daemon.log');
    await waitFor('the daemon to log the reload', () => /config reloaded: changed [^"]*max_concurrent_tasks/.test(fs.readFileSync(log, 'utf8')));
    assert.equal((await h.json<{ pid: number; max_concurrent_tasks: number }>(['daemon', 'status'])).max_concurrent_tasks, 2);
  });
});
