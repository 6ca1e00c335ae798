// The CLI's exit codes (README "Using atlas"): 1 is only "the task ended unsuccessfully";
// atlas's own failures (storage, internal) exit 7 and a task stopped at a human step exits 6,
// so a script can tell them apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientError } from '../../src/client/client.js';
import { EXIT, exitCodeFor, exitForTask } from '../../src/cli/output.js';
import { AtlasError, storageError } from '../../src/errors.js';

test('storage and internal errors exit 7, never 1 (the code of a failed task)', () => {
  const full = storageError('write', '/home/me/.atlas/x/task.json', Object.assign(new Error('no space'), { code: 'ENOSPC' }));
  assert.equal(exitCodeFor(full), EXIT.INTERNAL);
  assert.equal(exitCodeFor(new ClientError('storage', 'could not write', -32000)), 7);
  assert.equal(exitCodeFor(new ClientError('internal', 'boom', -32603)), 7);
  assert.equal(exitCodeFor(new AtlasError('corrupt', 'task.json does not parse')), 7);
  assert.equal(exitCodeFor(new AtlasError('unsupported_schema', 'from a newer atlas')), 7);
  assert.equal(exitCodeFor(new TypeError('a bug')), 7);
  // The others keep their codes.
  assert.equal(exitCodeFor(new ClientError('not_found', 'no task', -32001)), 4);
  assert.equal(exitCodeFor(new AtlasError('invalid_input', 'bad')), 2);
  assert.equal(exitCodeFor(new AtlasError('daemon_unreachable', 'down')), 3);
  assert.equal(exitCodeFor(new AtlasError('not_allowed', 'running')), 5);
});

test('--wait/--follow: completed 0, waiting for approval 6, any other end 1', () => {
  assert.equal(exitForTask('completed'), 0);
  assert.equal(exitForTask('awaiting_approval'), 6);
  for (const s of ['failed', 'validation_failed', 'gh_failed', 'ci_failed', 'ci_timeout', 'interrupted', 'rejected', 'abandoned']) assert.equal(exitForTask(s), 1, s);
});
