// {{ inputs.x }} in commands: whatever the quoting around the reference, the value arrives
// as data and never as shell syntax. Each case runs the interpolated command with /bin/sh
// and the environment a step gets, in a temp dir, and checks that nothing was executed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { inputEnvName, interpolate } from '../../src/engine/interpolate.js';
import { tempRoot } from './helpers.js';

const NASTY = ['$(touch pwned)', '`touch pwned`', `'; touch pwned; '`, '"; touch pwned; "', '$(touch pwned', 'a\nb; touch pwned', '\\"; touch pwned #', "it's a \"test\" $HOME"];

function runSh(dir: string, command: string, inputs: Record<string, string>): string {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], ATLAS_TASK_ID: 'task-20260101-000000', ATLAS_WORKSPACE: 'ws' };
  for (const [k, v] of Object.entries(inputs)) env[inputEnvName(k)] = v;
  const r = spawnSync('/bin/sh', ['-c', command], { cwd: dir, env, encoding: 'utf8' });
  assert.equal(r.status, 0, `${command}: ${r.stderr}`);
  return r.stdout;
}

test('interpolate: text mode puts values in as they are', () => {
  const task = { id: 'task-20260101-000000', workspace: 'ws', inputs: { name: '$(x) "y"' } };
  assert.equal(interpolate('hi {{ inputs.name }} in {{task.workspace}} ({{ task.id }}) {{ inputs.missing }}.', task, 'text'), 'hi $(x) "y" in ws (task-20260101-000000) .');
});

test('interpolate: in commands the value arrives literally in every quoting context, and nothing runs', () => {
  const dir = tempRoot('atlas-interp-test-');
  try {
    const cases: Array<{ template: string; expect: (x: string) => string }> = [
      { template: `printf '%s' {{ inputs.x }}`, expect: (x) => x },
      { template: `printf '%s' "{{ inputs.x }}"`, expect: (x) => x },
      { template: `printf '%s' "<{{ inputs.x }}>"`, expect: (x) => `<${x}>` },
      { template: `printf '%s' '{{ inputs.x }}'`, expect: (x) => x },
      { template: `printf '%s' 'a{{ inputs.x }}b'`, expect: (x) => `a${x}b` },
      { template: `printf '%s' "$(printf '%s' {{ inputs.x }})"`, expect: (x) => x.replace(/\n+$/, '') },
      { template: `v="$(printf '%s' "{{ inputs.x }}")"; printf '%s' "$v"`, expect: (x) => x.replace(/\n+$/, '') },
      { template: 'printf \'%s\' "`printf \'%s\' {{ inputs.x }}`"', expect: (x) => x.replace(/\n+$/, '') },
      { template: `printf '%s' {{ inputs.x }}{{ inputs.x }}`, expect: (x) => x + x },
      { template: `printf '%s|%s' {{ task.id }} "{{ task.workspace }}"`, expect: () => 'task-20260101-000000|ws' },
    ];
    for (const x of NASTY) {
      for (const c of cases) {
        const command = interpolate(c.template, { id: 'task-20260101-000000', workspace: 'ws', inputs: { x } }, 'shell');
        assert.ok(!command.includes('pwned'), `the value itself is not in the command: ${command}`);
        assert.equal(runSh(dir, command, { x }), c.expect(x), `${c.template} with ${JSON.stringify(x)}`);
        assert.deepEqual(fs.readdirSync(dir), [], `${c.template} with ${JSON.stringify(x)} ran something`);
      }
      // A heredoc: the value arrives (within quotes) and nothing runs.
      const heredoc = interpolate('cat <<EOF\nvalue: {{ inputs.x }}\nEOF', { id: 'task-20260101-000000', workspace: 'ws', inputs: { x } }, 'shell');
      assert.ok(runSh(dir, heredoc, { x }).includes(x));
      assert.deepEqual(fs.readdirSync(dir), []);
    }
    // An input not given expands to nothing.
    const command = interpolate(`printf '[%s]' {{ inputs.opt }}`, { id: 'task-20260101-000000', workspace: 'ws', inputs: {} }, 'shell');
    assert.equal(runSh(dir, command, {}), '[]');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
