// install-service (issue 18 item 8): the unit carries the installing shell's PATH, has a
// readable name (atlas.service for ~/.atlas, atlas-<home name> for another home, a hash
// added when two homes share a name), and `daemon start` says when a unit is installed but
// the daemon running was started by hand. Also: the built-in ci template's interval is an input.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, expectExit, runCli } from '../helpers/daemon.js';

describe('install-service and the ci interval input', () => {
  let h: TestHome;
  let env: Record<string, string>;

  before(() => {
    h = new TestHome();
    const fakeHome = h.dir('user');
    env = { HOME: fakeHome, XDG_CONFIG_HOME: path.join(fakeHome, '.config'), PATH: `/opt/atlas-test/bin:${process.env['PATH']}` };
  });
  after(async () => {
    await h.dispose();
  });

  test('the unit has a readable name and the installing PATH', async () => {
    const r = await h.json<{ file: string; name: string; enable: string[] }>(['daemon', 'install-service'], { env });
    assert.equal(r.name, 'atlas-home.service');
    assert.equal(r.file, path.join(env['XDG_CONFIG_HOME']!, 'systemd', 'user', 'atlas-home.service'));
    const text = fs.readFileSync(r.file, 'utf8');
    assert.match(text, new RegExp(`^Environment=PATH=/opt/atlas-test/bin:`, 'm'));
    assert.match(text, new RegExp(`--home ${h.home}\\n`));
    assert.ok(r.enable.includes('systemctl --user enable --now atlas-home.service'), JSON.stringify(r.enable));

    // The default home gets plain atlas.service.
    const defaultHome = path.join(env['HOME']!, '.atlas');
    const d = JSON.parse((await runCli(defaultHome, ['daemon', 'install-service', '--json'], { env })).stdout) as { name: string };
    assert.equal(d.name, 'atlas.service');
    // Another home with the same directory name does not take over the first one's unit.
    const other = path.join(h.dir('elsewhere'), 'home');
    const o = JSON.parse((await runCli(other, ['daemon', 'install-service', '--json'], { env })).stdout) as { name: string; file: string };
    assert.match(o.name, /^atlas-home-[0-9a-f]{8}\.service$/);
    assert.match(fs.readFileSync(r.file, 'utf8'), new RegExp(`--home ${h.home}\\n`));
    // --print writes nothing.
    const printed = expectExit(await runCli(path.join(h.root, 'third'), ['daemon', 'install-service', '--print'], { env }), 0);
    assert.match(printed.stdout, /^\[Unit\]/);
    assert.equal(fs.existsSync(path.join(env['XDG_CONFIG_HOME']!, 'systemd', 'user', 'atlas-third.service')), false);
  });

  test('daemon start warns when a unit is installed but the daemon was started by hand', async () => {
    const r = expectExit(await h.cli(['daemon', 'start'], { env: { ...env, INVOCATION_ID: 'inherited-from-a-terminal-unit' } }), 0);
    assert.match(r.stderr, /atlas-home\.service is installed for this home, but the daemon running \(pid \d+\) was started by hand/);
    assert.match(r.stderr, /atlas daemon stop && systemctl --user start atlas-home\.service/);
    const status = await h.json<{ supervisor: string | null }>(['daemon', 'status']);
    assert.equal(status.supervisor, null);
  });

  test("the ci template's interval is an input, checked at start", async () => {
    await h.createWorkspaces(['ci']);
    const bad = expectExit(await h.cli(['start', 'ci', '-w', 'ci', '-i', 'command=true', '-i', 'interval=soon']), 2);
    assert.match(bad.stderr, /input 'interval' is step ci's interval: expected a duration/);
    const marker = path.join(h.dir('ci'), 'polled');
    const t = await h.json<TaskRecord>(['start', 'ci', '-w', 'ci', '-i', `command=test -f polled || { touch polled; exit 8; }`, '-i', 'interval=200ms', '--wait']);
    assert.equal(t.status, 'completed');
    assert.ok(fs.existsSync(marker));
    assert.equal(t.inputs['interval'], '200ms');
  });
});
