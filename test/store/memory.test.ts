// The filesystem memory journal (src/store/memory.ts) after a crash: a torn last line (a
// kill -9 or power cut mid-append) is skipped, the next append starts on a line of its own,
// and nothing before the tear is lost.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FsStore } from '../../src/store/fs-store.js';

test('fs memory: a torn last line is skipped and the next entry lands whole on its own line', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-memory-'));
  try {
    const store = new FsStore(path.join(root, 'home'));
    await store.init();
    await store.workspaces.create({ name: 'ws', path: root, kind: 'path', repo: null, branch: null });
    const a = await store.memory.add('ws', { kind: 'decision', text: 'kept', source: 'cli' });
    const file = store.paths.memoryFile('ws');
    fs.appendFileSync(file, '{"op":"add","id":"2","kind":"note","text":"torn hal');
    assert.deepEqual(await store.memory.list('ws'), [a]);
    const b = await store.memory.add('ws', { kind: 'note', text: 'after the tear', source: 'cli' });
    assert.equal(b.id, '2');
    assert.deepEqual(await new FsStore(store.paths.root).memory.list('ws'), [a, b]);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.length, 4); // kept, torn, after, and the final newline
    assert.equal(JSON.parse(lines[2]!).text, 'after the tear');
    await store.close();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
