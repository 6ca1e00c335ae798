// atlas template list | show | validate (DESIGN §4, §7): built-in and user templates, a user
// template overriding a built-in, --json shapes, and a broken template file refused with
// exit 2 and file:line messages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DIST, TestHome, expectExit, parseStdout } from '../helpers/daemon.js';

const BUILTINS = ['bugfix', 'ci', 'commit', 'demo', 'feature', 'task', 'validate'];

const BROKEN = `name: broken
description: two mistakes
steps:
  - name: ok
    type: shell
    run: echo fine
  - name: bad
    type: nosuch
    run: echo never
`;

const BAD_YAML = `name: badyaml
steps:
  - name: a
    type: shell
    run: [unclosed
`;

describe('atlas template', () => {
  let h: TestHome;

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
  });
  after(async () => {
    await h.dispose();
  });

  test('list --json: the built-ins and the user templates', async () => {
    const list = await h.json<Array<{ name: string; builtin: boolean; steps: number; description: string }>>(['template', 'list']);
    const names = list.map((t) => t.name);
    for (const b of BUILTINS) assert.ok(names.includes(b), `built-in ${b} missing from ${names.join(', ')}`);
    const quick = list.find((t) => t.name === 'quick');
    assert.ok(quick);
    assert.equal(quick.builtin, false);
    assert.equal(quick.steps, 1);
    assert.equal(list.find((t) => t.name === 'demo')?.builtin, true);
    const text = expectExit(await h.cli(['template', 'list']), 0);
    assert.match(text.stdout, /demo\s+5\s+built-in/);
    assert.match(text.stdout, /quick\s+1\s+user/);
  });

  test('show prints the YAML; --json gives the template with its text', async () => {
    const text = expectExit(await h.cli(['template', 'show', 'demo']), 0);
    assert.ok(text.stdout.includes(fs.readFileSync(path.join(DIST, '..', 'templates', 'demo.yaml'), 'utf8')));
    const j = await h.json<{ name: string; text: string; builtin: boolean }>(['template', 'show', 'quick']);
    assert.equal(j.name, 'quick');
    assert.equal(j.builtin, false);
    assert.equal(j.text, fs.readFileSync(path.join(h.home, 'templates', 'quick.yaml'), 'utf8'));
    const missing = expectExit(await h.cli(['template', 'show', 'no-such']), 4);
    assert.match(missing.stderr, /no template no-such/);
    expectExit(await h.cli(['template', 'show']), 2);
  });

  test('a user template with a built-in name overrides it', async () => {
    h.writeTemplate('demo', 'name: demo\ndescription: mine\nsteps:\n  - name: only\n    type: shell\n    run: echo mine\n');
    const j = await h.json<{ name: string; builtin: boolean; text: string }>(['template', 'show', 'demo']);
    assert.equal(j.builtin, false);
    assert.match(j.text, /echo mine/);
    fs.rmSync(path.join(h.home, 'templates', 'demo.yaml'));
    assert.equal((await h.json<{ builtin: boolean }>(['template', 'show', 'demo'])).builtin, true);
  });

  test('validate of a good file: exit 0, names its steps', async () => {
    // The template's name must match its file's name.
    fs.mkdirSync(path.join(h.root, 'mine'));
    const file = path.join(h.root, 'mine', 'quick.yaml');
    fs.writeFileSync(file, fs.readFileSync(path.join(h.home, 'templates', 'quick.yaml')));
    const r = expectExit(await h.cli(['template', 'validate', file]), 0);
    assert.match(r.stdout, /valid template quick with 1 steps \(hello:shell\)/);
    const j = await h.json<{ valid: boolean; name: string; steps: unknown[] }>(['template', 'validate', file]);
    assert.deepEqual(j, { valid: true, name: 'quick', steps: [{ name: 'hello', type: 'shell' }], problems: [] });
  });

  test('validate of a broken file: exit 2 with file:line messages', async () => {
    const file = path.join(h.root, 'broken.yaml');
    fs.writeFileSync(file, BROKEN);
    const r = expectExit(await h.cli(['template', 'validate', file]), 2);
    assert.equal(r.stdout, '');
    // Line 8 holds `type: nosuch`.
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8: steps\\[1\\]\\.type: unknown step type "nosuch"`));

    const j = expectExit(await h.cli(['template', 'validate', file, '--json']), 2);
    const body = parseStdout<{ valid: boolean; problems: Array<{ file: string; line: number; field: string; message: string }> }>(j);
    assert.equal(body.valid, false);
    assert.ok(body.problems.some((p) => p.file === file && p.line === 8 && p.field === 'steps[1].type'), JSON.stringify(body.problems));

    const yamlFile = path.join(h.root, 'badyaml.yaml');
    fs.writeFileSync(yamlFile, BAD_YAML);
    const y = expectExit(await h.cli(['template', 'validate', yamlFile]), 2);
    assert.match(y.stderr, new RegExp(`${yamlFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: `));

    expectExit(await h.cli(['template', 'validate', path.join(h.root, 'missing.yaml')]), 4);

    const misnamed = path.join(h.root, 'other-name.yaml');
    fs.writeFileSync(misnamed, fs.readFileSync(path.join(h.home, 'templates', 'quick.yaml')));
    assert.match(expectExit(await h.cli(['template', 'validate', misnamed]), 2).stderr, /other-name\.yaml:1: name: /);
  });

  test('a broken user template is refused at start, with file:line (exit 2)', async () => {
    h.writeTemplate('broken', BROKEN);
    await h.createWorkspaces(['ws']);
    const r = expectExit(await h.cli(['start', 'broken', '-w', 'ws']), 2);
    assert.match(r.stderr, /broken\.yaml:8: steps\[1\]\.type/);
    assert.deepEqual(await h.json<unknown[]>(['list']), []);
    const list = await h.json<Array<{ name: string; error?: string }>>(['template', 'list']);
    assert.match(list.find((t) => t.name === 'broken')?.error ?? '', /broken\.yaml:8/);
    await h.stopDaemon();
  });
});
