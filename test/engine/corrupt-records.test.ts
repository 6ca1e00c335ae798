// Corrupt records seen through the engine: a task.json that cannot be read is repaired (as a
// restart would) and the answer says so, rather than served from task.json.bak in silence;
// a purged workspace leaves no ghost tasks in the index; a corrupt workspace.json can be
// fixed by doctor --repair, replaced by create, and removed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { createWorkspace } from '../../src/engine/workspaces.js';
import { readTaskFile, run, settle, taskDir, withEnv, writeTemplate } from './helpers.js';

test('show of a task whose task.json is corrupt: repaired from the log, with a warning, never the stale backup in silence', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'two', steps: [{ name: 'a', type: 'shell', run: 'true' }, { name: 'b', type: 'shell', run: 'true' }] });
    const done = await run(env, 'two');
    assert.equal(done.status, 'completed');
    fs.writeFileSync(path.join(taskDir(env, env.wsName, done.id), 'task.json'), '{ not json');
    const shown = await env.engine.showTask(done.id);
    assert.equal(shown.status, 'completed', 'the stale backup was served');
    assert.equal(shown.warnings?.length, 1);
    assert.match(shown.warnings![0]!, /unreadable.*rebuilt it from task\.log/);
    // Repaired on disk too, and the index agrees.
    assert.equal(readTaskFile(env, env.wsName, done.id).status, 'completed');
    assert.equal((await env.engine.showTask(done.id)).warnings, undefined);
    assert.equal((await env.engine.listTasks({})).find((t) => t.id === done.id)?.status, 'completed');
  });
});

test('workspace remove --purge leaves no ghost tasks behind', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'one', steps: [{ name: 'a', type: 'shell', run: 'true' }] });
    const dir = path.join(env.root, 'other');
    fs.mkdirSync(dir);
    await createWorkspace(env.engine.store, { name: 'other', path: dir });
    const t = await env.engine.startTask({ template: 'one', workspace: 'other' });
    await settle(env.engine, t.id);
    assert.equal((await env.engine.listTasks({})).filter((x) => x.id === t.id).length, 1);
    await env.engine.removeWorkspace('other', true);
    assert.deepEqual((await env.engine.listTasks({})).filter((x) => x.workspace === 'other'), []);
    await assert.rejects(env.engine.getTask(t.id), (err: unknown) => isAtlasError(err, 'not_found'));
  });
});

test('a corrupt workspace.json: doctor --repair rebuilds it from its tasks; create replaces it; remove --purge removes it', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'one', steps: [{ name: 'a', type: 'shell', run: 'true' }] });
    await run(env, 'one');
    const file = env.engine.store.paths.workspaceFile(env.wsName);
    fs.writeFileSync(file, 'garbage');
    const report = await env.engine.doctor(true);
    const finding = report.findings.find((f) => f.kind === 'workspace_corrupt');
    assert.ok(finding?.fixed, JSON.stringify(report.findings));
    const ws = await env.engine.store.workspaces.get(env.wsName);
    assert.equal(ws.path, fs.realpathSync(env.ws));
    assert.ok(fs.readdirSync(path.dirname(file)).some((n) => n.startsWith('workspace.json.corrupt-')), 'the broken file is kept for inspection');

    // No tasks: create declares it anew; remove --purge takes it away.
    const dir = path.join(env.root, 'bare');
    fs.mkdirSync(dir);
    await createWorkspace(env.engine.store, { name: 'bare', path: dir });
    fs.writeFileSync(env.engine.store.paths.workspaceFile('bare'), '[]');
    const again = await createWorkspace(env.engine.store, { name: 'bare', path: dir });
    assert.equal(again.path, fs.realpathSync(dir));
    fs.writeFileSync(env.engine.store.paths.workspaceFile('bare'), 'garbage');
    const removed = await env.engine.removeWorkspace('bare', true);
    assert.equal(removed.purged, true);
    assert.equal(fs.existsSync(env.engine.store.paths.workspaceDir('bare')), false);
  });
});
