// Workspace memory (DESIGN §14) through a real daemon and the CLI: entries added by the CLI
// and by an ai step (the fake agent writes JSON lines to $ATLAS_MEMORY_OUT) reach the next ai
// step's prompt ({{ memory }}) and its ATLAS_MEMORY_FILE, newest first, within memory.max_bytes;
// a malformed line is reported in the step's output and skipped; bad inputs get clear errors;
// the entries outlive a kill -9 of the daemon.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TaskRecord } from '../../src/store/records.js';
import type { MemoryEntry } from '../../src/store/memory.js';
import { TestHome, assertGone, expectExit } from '../helpers/daemon.js';
import { FAKE_AGENT } from '../engine/helpers.js';

// Each item is `- [kind] text\n`; the cap holds the three newest (23 + 21 + 28 = 72 bytes), not the oldest.
const CAP = 80;
const REMEMBER = ['{"text": "from the agent", "kind": "pattern"}', 'this is not json', '{"text": "", "kind": "note"}', '{"text": "bad kind", "kind": "rumour"}', ''].join('\n');

const TEMPLATE = `name: think
steps:
  - name: plan
    type: ai
    prompt: "Plan it.\\n{{ memory }}"
    env:
      FAKE_AGENT_REMEMBER: ${JSON.stringify(REMEMBER)}
  - name: act
    type: ai
    prompt: "Act on it.\\nWhat we know:\\n{{ memory }}Go."
`;

describe('workspace memory', () => {
  let h: TestHome;
  let ws: string;
  let task: TaskRecord;

  before(async () => {
    h = new TestHome();
    fs.mkdirSync(h.home, { recursive: true });
    fs.writeFileSync(path.join(h.home, 'config.yaml'), `ai:\n  command: ${JSON.stringify(FAKE_AGENT)}\nmemory:\n  max_bytes: ${CAP}\nstep_defaults:\n  kill_grace: 200ms\n`);
    h.writeTemplate('think', TEMPLATE);
    await h.startDaemon();
    ws = (await h.createWorkspaces(['api']))['api']!;
  });
  after(async () => {
    await h?.dispose();
  });

  test('entries from the CLI and from an ai step reach the next ai step, newest first, within the cap', async () => {
    await h.ok(['memory', 'add', '-w', 'api', 'the oldest entry, past the cap']);
    await h.ok(['memory', 'add', '-w', 'api', 'first decision', '--kind', 'decision']);
    const second = await h.json<MemoryEntry>(['memory', 'add', '-w', 'api', 'second note']);
    assert.equal(second.kind, 'note');
    assert.equal(second.source, 'cli');

    const started = await h.json<TaskRecord>(['start', 'think', '-w', 'api']);
    task = await h.waitSettled(started.id, 60_000);
    assert.equal(task.status, 'completed', task.error ?? '');

    const given = '- [pattern] from the agent\n- [note] second note\n- [decision] first decision\n';
    // The last prompt the agent saw is the second step's.
    assert.equal(fs.readFileSync(path.join(ws, 'agent-output.md'), 'utf8'), `# written by the fake agent\n\nAct on it.\nWhat we know:\n${given}Go.\n`);
    assert.equal(fs.readFileSync(path.join(ws, 'agent-memory.md'), 'utf8'), given);

    // The agent's one good line is kept with the task as its source; the others are reported.
    const list = await h.json<MemoryEntry[]>(['memory', 'list', '-w', 'api']);
    assert.deepEqual(list.map((e) => [e.kind, e.text, e.source]), [
      ['note', 'the oldest entry, past the cap', 'cli'],
      ['decision', 'first decision', 'cli'],
      ['note', 'second note', 'cli'],
      ['pattern', 'from the agent', task.id],
    ]);
    const logs = (await h.ok(['logs', task.id, '--step', 'plan'])).stdout;
    assert.match(logs, /memory: line 2 of \$ATLAS_MEMORY_OUT skipped: not JSON/);
    assert.match(logs, /memory: line 3 of \$ATLAS_MEMORY_OUT skipped: a memory entry needs some text/);
    assert.match(logs, /memory: line 4 of \$ATLAS_MEMORY_OUT skipped: unknown memory kind "rumour"/);
    assert.match(logs, /memory: added #4 to workspace api/);
  });

  test('search, remove, and clear errors for bad inputs', async () => {
    const found = await h.json<MemoryEntry[]>(['memory', 'search', '-w', 'api', 'DECISION first']);
    assert.deepEqual(found.map((e) => e.text), ['first decision']);
    assert.match((await h.ok(['memory', 'search', '-w', 'api', 'nothing-like-it'])).stdout, /no memory entry of workspace api matches/);

    const removed = await h.json<MemoryEntry>(['memory', 'remove', '-w', 'api', '1']);
    assert.equal(removed.text, 'the oldest entry, past the cap');
    assert.deepEqual((await h.json<MemoryEntry[]>(['memory', 'list', '-w', 'api'])).map((e) => e.id), ['2', '3', '4']);

    const r1 = expectExit(await h.cli(['memory', 'remove', '-w', 'api', '1']), 4);
    assert.match(r1.stderr, /workspace api has no memory entry 1/);
    const r2 = expectExit(await h.cli(['memory', 'add', '-w', 'nope', 'text']), 4);
    assert.match(r2.stderr, /no workspace nope/);
    const r3 = expectExit(await h.cli(['memory', 'add', '-w', 'api', '   ']), 2);
    assert.match(r3.stderr, /needs some text/);
    const r4 = expectExit(await h.cli(['memory', 'add', '-w', 'api', 'x', '--kind', 'rumour']), 2);
    assert.match(r4.stderr, /kind/);
    const r5 = expectExit(await h.cli(['memory', 'add', '-w', 'api', 'y'.repeat(9000)]), 2);
    assert.match(r5.stderr, /at most 8192 bytes, this one has 9000/);
    const r6 = expectExit(await h.cli(['memory', 'remove', '-w', 'api', 'abc']), 2);
    assert.match(r6.stderr, /ids are numbers/);
    // Nothing was added by the refused calls.
    assert.equal((await h.json<MemoryEntry[]>(['memory', 'list', '-w', 'api'])).length, 3);
  });

  test('the entries outlive a kill -9 of the daemon', async () => {
    const before = await h.json<MemoryEntry[]>(['memory', 'list', '-w', 'api']);
    const pid = (await h.json<{ pid: number }>(['daemon', 'status'])).pid;
    process.kill(pid, 'SIGKILL');
    await assertGone(pid, 'the killed daemon');
    await h.startDaemon();
    assert.deepEqual(await h.json<MemoryEntry[]>(['memory', 'list', '-w', 'api']), before);
    // Ids go on after the highest ever used (a removed one is not reused).
    assert.equal((await h.json<MemoryEntry>(['memory', 'add', '-w', 'api', 'after the restart'])).id, '5');
  });
});
