// Versioned artifacts: writers racing for the next version (in one process and from several
// processes) each get their own number and none overwrites another; a writer killed at any
// moment never leaves a half-written version behind.
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ArtifactDir } from '../../src/store/artifacts.js';
import { Fixture, addTask, addWorkspace, expectCode, reap, tempHome } from './helpers.js';

interface Payload {
  writer: string;
  index: number;
}

/** Asserts the directory holds exactly validation.1.json..N and returns the parsed contents by name. */
function readVersions(dir: string, n: number): Map<string, Payload> {
  const names = fs.readdirSync(dir).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  assert.deepEqual(
    names,
    Array.from({ length: n }, (_, i) => `validation.${i + 1}.json`),
    'the versions are numbered 1..N with no gap, no duplicate and no temp file left',
  );
  return new Map(names.map((name) => [name, JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Payload]));
}

function assertAllWritten(contents: Map<string, Payload>, expected: Payload[]): void {
  const key = (p: Payload) => `${p.writer}#${p.index}`;
  const got = [...contents.values()].map(key).sort();
  assert.deepEqual(got, expected.map(key).sort(), 'every save is there exactly once: none was overwritten');
}

test('saveVersioned: names go 1, 2, 3 and list sorts them numerically', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const arts = h.store.artifacts('alpha', task.id);
    assert.deepEqual(await arts.list(), []);
    for (let i = 1; i <= 11; i++) assert.equal(await arts.saveVersioned('validation', '.json', `{"n":${i}}`), `validation.${i}.json`);
    assert.equal(await arts.saveVersioned('answer', '.md', 'hello'), 'answer.1.md');
    const listed = (await arts.list()).map((a) => a.name);
    assert.deepEqual(listed.slice(0, 3), ['answer.1.md', 'validation.1.json', 'validation.2.json']);
    assert.equal(listed.at(-1), 'validation.11.json');
    assert.equal((await arts.get('validation.11.json')).toString(), '{"n":11}');
    assert.equal((await arts.list()).find((a) => a.name === 'answer.1.md')?.size, 5);
    await expectCode(() => arts.get('validation.12.json'), 'not_found');
    // A fixed name is replaced atomically.
    await arts.save('summary.txt', 'one');
    await arts.save('summary.txt', 'two');
    assert.equal((await arts.get('summary.txt')).toString(), 'two');
  } finally {
    await h.cleanup();
  }
});

test('saveVersioned: 40 concurrent saves in one process get 40 distinct versions', { timeout: 30_000 }, async () => {
  const h = await tempHome();
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    // Two ArtifactDir objects on the same directory, as two components of the daemon would have.
    const dirs = [h.store.artifacts('alpha', task.id), new ArtifactDir(h.store.paths.artifactsDir('alpha', task.id))];
    const payloads: Payload[] = Array.from({ length: 40 }, (_, i) => ({ writer: 'main', index: i }));
    const names = await Promise.all(payloads.map((p, i) => dirs[i % 2]!.saveVersioned('validation', '.json', JSON.stringify(p))));
    assert.equal(new Set(names).size, 40, 'every save reported its own name');
    const contents = readVersions(h.store.paths.artifactsDir('alpha', task.id), 40);
    assertAllWritten(contents, payloads);
    // Each save reported the name that holds its own content.
    names.forEach((name, i) => assert.deepEqual(contents.get(name), payloads[i]));
  } finally {
    await h.cleanup();
  }
});

test('saveVersioned: 4 processes racing get distinct versions and none is overwritten', { timeout: 60_000 }, async () => {
  const h = await tempHome();
  const fixtures: Fixture[] = [];
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.artifactsDir('alpha', task.id);
    // Some versions exist already: the writers must continue after them.
    const arts = h.store.artifacts('alpha', task.id);
    const expected: Payload[] = [];
    for (let i = 0; i < 3; i++) {
      expected.push({ writer: 'parent', index: i });
      await arts.saveVersioned('validation', '.json', JSON.stringify(expected[i]));
    }
    const PER = 15;
    for (let w = 0; w < 4; w++) {
      fixtures.push(new Fixture('store-artifact-writer', ['race', h.home, 'alpha', task.id, String(PER), `w${w}`]));
      for (let i = 0; i < PER; i++) expected.push({ writer: `w${w}`, index: i });
    }
    await Promise.all(fixtures.map((f) => f.waitForLine('ready')));
    for (const f of fixtures) f.send('go');
    // The parent races them too.
    const parentNames = await Promise.all(
      Array.from({ length: 5 }, (_, i) => {
        const p = { writer: 'parent', index: 3 + i };
        expected.push(p);
        return arts.saveVersioned('validation', '.json', JSON.stringify(p));
      }),
    );
    await Promise.all(fixtures.map((f) => f.succeeded()));

    const contents = readVersions(dir, expected.length);
    assertAllWritten(contents, expected);
    // Each process reported the names that hold its own content, and no name twice.
    const reported = [...parentNames];
    fixtures.forEach((f, w) => {
      const mine = f.lines.filter((l) => l.startsWith('saved ')).map((l) => l.slice('saved '.length));
      assert.equal(mine.length, PER);
      mine.forEach((name, i) => assert.deepEqual(contents.get(name), { writer: `w${w}`, index: i }));
      reported.push(...mine);
    });
    assert.equal(new Set(reported).size, expected.length - 3);
  } finally {
    await reap(fixtures);
    await h.cleanup();
  }
});

test('saveVersioned: a writer killed at any moment never leaves a half-written version', { timeout: 60_000 }, async () => {
  const h = await tempHome();
  const fixtures: Fixture[] = [];
  try {
    await addWorkspace(h.store, 'alpha');
    const task = await addTask(h.store, 'alpha');
    const dir = h.store.paths.artifactsDir('alpha', task.id);
    const BYTES = 1 << 20;
    for (let round = 0; round < 15; round++) {
      const f = new Fixture('store-artifact-writer', ['loop', h.home, 'alpha', task.id, String(BYTES)]);
      fixtures.push(f);
      await f.waitForLine('started');
      await sleep(Math.random() * 30);
      await f.kill();
      // Every version a reader can see is complete.
      for (const a of await h.store.artifacts('alpha', task.id).list()) {
        assert.equal(a.size, BYTES, `${a.name} is complete (round ${round})`);
      }
    }
    await h.store.tasks.sweep('alpha', task.id);
    const names = fs.readdirSync(dir);
    assert.ok(names.length >= 15);
    assert.deepEqual(names.filter((n) => n.includes('.tmp-')), [], 'sweep removed the dead writers\' temp files');
    for (const name of names) {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      assert.equal(text.length, BYTES, `${name} is complete`);
      JSON.parse(text);
    }
    // The next version after the crashes is the next number.
    const highest = await h.store.artifacts('alpha', task.id).highestVersion('validation', '.json');
    assert.equal(await h.store.artifacts('alpha', task.id).saveVersioned('validation', '.json', '{}'), `validation.${highest + 1}.json`);
  } finally {
    await reap(fixtures);
    await h.cleanup();
  }
});
