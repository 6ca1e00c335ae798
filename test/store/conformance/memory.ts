// Conformance for workspace memory (src/store/memory.ts): what every backend keeps. Run by
// suite.ts for each backend.
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import type { Backend } from './suite.js';
import { expectCode } from '../helpers.js';

export function runMemoryConformance(name: string, withBackend: (fn: (b: Backend) => Promise<void>) => Promise<void>, opts: { timeout: number }): void {
  test(`${name} store: memory entries are kept per workspace, in order, removed, added once per key, seen by another store`, opts, () =>
    withBackend(async ({ store, second }) => {
      for (const ws of ['alpha', 'beta']) await store.workspaces.create({ name: ws, path: os.tmpdir(), kind: 'path', repo: null, branch: null });
      assert.deepEqual(await store.memory.list('alpha'), []);
      const a = await store.memory.add('alpha', { kind: 'decision', text: 'use pnpm', source: 'cli' });
      const b = await store.memory.add('alpha', { kind: 'note', text: 'line one\nline two', source: 'task-20261121-101500', key: 'k1' });
      await store.memory.add('beta', { kind: 'pattern', text: 'other workspace', source: 'cli' });
      assert.equal(a.workspace, 'alpha');
      assert.ok(Number(b.id) > Number(a.id));
      assert.ok(!Number.isNaN(Date.parse(a.created_at)));
      // The same key again: the first entry, nothing added.
      const again = await store.memory.add('alpha', { kind: 'note', text: 'line one\nline two', source: 'task-20261121-101500', key: 'k1' });
      assert.deepEqual(again, b);
      const other = await second();
      assert.deepEqual((await other.memory.list('alpha')).map((e) => [e.id, e.kind, e.text, e.source]), [
        [a.id, 'decision', 'use pnpm', 'cli'],
        [b.id, 'note', 'line one\nline two', 'task-20261121-101500'],
      ]);
      assert.deepEqual((await other.memory.list('beta')).map((e) => e.text), ['other workspace']);
      assert.deepEqual(await store.memory.remove('alpha', a.id), a);
      await expectCode(() => store.memory.remove('alpha', a.id), 'not_found');
      await expectCode(() => store.memory.remove('beta', b.id), 'not_found');
      const c = await other.memory.add('alpha', { kind: 'note', text: 'after', source: 'cli' });
      assert.ok(Number(c.id) > Number(b.id), 'a removed id is never reused');
      assert.deepEqual((await store.memory.list('alpha')).map((e) => e.text), ['line one\nline two', 'after']);
      // A purged workspace takes its memory with it.
      await store.workspaces.remove('beta', true);
      assert.deepEqual(await store.memory.list('beta'), []);
    }),
  );
}
