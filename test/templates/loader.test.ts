// Template checking (DESIGN §4): every problem is reported as `file:line: field: message`,
// before a task starts; user templates override built-ins.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { TemplateError, TemplateRegistry, loadTemplateFile, parseTemplate, type TemplateProblem } from '../../src/templates/loader.js';
import { parseDuration } from '../../src/templates/schema.js';
import { tempRoot, withEnv, writeTemplateText } from '../engine/helpers.js';

/** Parses `text` as `file` and returns the problems it must have. */
function problemsOf(text: string, file = '/tmp/tpl/bad.yaml'): { problems: TemplateProblem[]; message: string } {
  try {
    parseTemplate(text, file);
  } catch (err) {
    assert.ok(err instanceof TemplateError, String(err));
    assert.equal(err.code, 'template_invalid');
    return { problems: err.problems, message: err.message };
  }
  assert.fail('the template was accepted');
}

const lines = (...l: string[]) => l.join('\n') + '\n';

test('templates: a bad duration names the file, the line and the field path', () => {
  const text = lines(
    'name: bad', //                      1
    'description: a bad duration', //    2
    'steps:', //                         3
    '  - name: build', //                4
    '    type: shell', //                5
    '    run: make', //                  6
    '  - name: test', //                 7
    '    type: shell', //                8
    '    timeout: forever', //           9
    '    run: make test', //             10
  );
  const { problems, message } = problemsOf(text);
  assert.equal(problems.length, 1);
  assert.deepEqual({ ...problems[0], message: undefined }, { file: '/tmp/tpl/bad.yaml', line: 9, field: 'steps[1].timeout', message: undefined });
  assert.match(message, /\/tmp\/tpl\/bad\.yaml:9: steps\[1\]\.timeout: expected a duration/);
});

test('templates: a bad duration at line 7 reads <file>:7: through the engine, and no task is created', async () => {
  await withEnv({}, async (env) => {
    const file = writeTemplateText(
      env,
      'slow',
      lines(
        'name: slow', //          1
        'steps:', //              2
        '  - name: one', //       3
        '    type: shell', //     4
        '    run: echo one', //   5
        '  - name: two', //       6
        '    timeout: 10 years', // 7
        '    type: shell', //     8
        '    run: echo two', //   9
      ),
    );
    await assert.rejects(env.engine.startTask({ template: 'slow', workspace: env.wsName }), (err: unknown) => {
      assert.ok(isAtlasError(err, 'template_invalid'), String(err));
      assert.ok(err.message.includes(`${file}:7:`), err.message);
      assert.ok(err.message.includes('steps[1].timeout'), err.message);
      return true;
    });
    assert.deepEqual(await env.engine.listTasks(), []);
    // The registry lists it with its error instead of failing the listing.
    const info = (await env.engine.templates.list()).find((t) => t.name === 'slow');
    assert.ok(info?.error?.includes(`${file}:7:`), JSON.stringify(info));
  });
});

test('templates: an unknown step type is refused with its line and the known types', () => {
  const { problems, message } = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    type: teleport', '    to: mars'));
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 4);
  assert.equal(problems[0]!.field, 'steps[0].type');
  assert.match(message, /bad\.yaml:4: steps\[0\]\.type: unknown step type "teleport"; expected one of shell, validation, ai, human, git, ci, wait/);
  const missing = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    run: x'));
  assert.equal(missing.problems[0]!.field, 'steps[0].type');
  assert.match(missing.message, /missing; expected one of/);
});

test('templates: an unknown key is named, at its own line', () => {
  const { problems, message } = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    type: shell', '    run: x', '    retrys:', '      max: 2'));
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 6);
  assert.equal(problems[0]!.field, 'steps[0].retrys');
  assert.match(message, /bad\.yaml:6: steps\[0\]\.retrys: unknown key 'retrys'/);
  const top = problemsOf(lines('name: bad', 'stpes: []', 'steps:', '  - name: go', '    type: shell', '    run: x'));
  assert.match(top.message, /bad\.yaml:2: stpes: unknown key 'stpes'/);
  const nested = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    type: shell', '    run: x', '    retries:', '      max: 2', '      backof: 1s'));
  assert.match(nested.message, /bad\.yaml:8: steps\[0\]\.retries\.backof: unknown key 'backof'/);
});

test('templates: duplicate step names are refused, pointing at the second one', () => {
  const { problems, message } = problemsOf(lines('name: bad', 'steps:', '  - name: build', '    type: shell', '    run: a', '  - name: build', '    type: shell', '    run: b'));
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 6);
  assert.equal(problems[0]!.field, 'steps[1].name');
  assert.match(message, /bad\.yaml:6: steps\[1\]\.name: duplicate step name "build" \(also steps\[0\]\)/);
});

test('templates: a reference to an undeclared input is refused', () => {
  const { problems, message } = problemsOf(
    lines('name: bad', 'inputs:', '  target:', '    required: true', 'steps:', '  - name: build', '    type: shell', '    run: make {{ inputs.target }} {{ inputs.flavour }}'),
  );
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 8);
  assert.equal(problems[0]!.field, 'steps[0].run');
  assert.match(message, /bad\.yaml:8: steps\[0\]\.run: uses undeclared input 'flavour'/);
  const inList = problemsOf(lines('name: bad', 'steps:', '  - name: v', '    type: validation', '    commands:', '      - echo ok', '      - name: x', '        run: echo {{ inputs.nope }}'));
  assert.equal(inList.problems[0]!.field, 'steps[0].commands[1].run');
  assert.equal(inList.problems[0]!.line, 8);
});

test('templates: YAML errors, missing fields, bad names and type-specific rules have lines too', () => {
  const syntax = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    type: shell', '    run: [unclosed'));
  assert.ok(syntax.problems[0]!.line >= 5, JSON.stringify(syntax.problems));
  const dupKey = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    type: shell', '    run: a', '    run: b'));
  assert.equal(dupKey.problems[0]!.line, 6);
  const noRun = problemsOf(lines('name: bad', 'steps:', '  - name: go', '    type: shell'));
  assert.match(noRun.message, /steps\[0\]\.run: a shell step needs exactly one of 'run' or 'commands'/);
  const badName = problemsOf(lines('name: bad', 'steps:', '  - name: Build Step', '    type: shell', '    run: a'));
  assert.match(badName.message, /bad\.yaml:3: steps\[0\]\.name: expected a name/);
  const noMessage = problemsOf(lines('name: bad', 'steps:', '  - name: c', '    type: git', '    action: commit'));
  assert.match(noMessage.message, /steps\[0\]\.message: a git commit step needs 'message'/);
  const escape = problemsOf(lines('name: bad', 'steps:', '  - name: c', '    type: shell', '    cwd: ../outside', '    run: a'));
  assert.match(escape.message, /bad\.yaml:5: steps\[0\]\.cwd: must be a relative path inside the workspace/);
  const noSteps = problemsOf(lines('name: bad', 'steps: []'));
  assert.match(noSteps.message, /a template needs at least one step/);
  const wait = problemsOf(lines('name: bad', 'steps:', '  - name: w', '    type: wait', '    until: next tuesday'));
  assert.match(wait.message, /steps\[0\]\.until: 'until' must be an ISO 8601 time/);
  // Several problems are all reported at once.
  const many = problemsOf(lines('name: bad', 'steps:', '  - name: a', '    type: nope', '  - name: b', '    type: shell', '    run: x', '    timeout: soon'));
  assert.deepEqual(
    many.problems.map((p) => [p.line, p.field]),
    [
      [4, 'steps[0].type'],
      [8, 'steps[1].timeout'],
    ],
  );
});

test('templates: every class of problem at once: header, steps, undeclared inputs and the file name', () => {
  const root = tempRoot('atlas-tpl-test-');
  try {
    const file = path.join(root, 'other.yaml');
    const text = lines('name: mine', 'colour: blue', 'steps:', '  - name: a', '    type: nope', '  - name: b', '    type: shell', '    run: echo {{ inputs.missing }}', '  - name: c', '    type: shell', '    run: x', '    timeout: soon');
    const { problems } = problemsOf(text, file);
    assert.deepEqual(
      problems.map((p) => [p.line, p.field]),
      [
        [2, 'colour'],
        [5, 'steps[0].type'],
        [12, 'steps[2].timeout'],
        [8, 'steps[1].run'],
        [1, 'name'],
      ],
    );
    // A bad header name: the steps are still checked.
    const badName = problemsOf(lines('name: Not A Name', 'steps:', '  - name: a', '    type: nope'));
    assert.deepEqual(badName.problems.map((p) => p.field), ['name', 'steps[0].type']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("templates: {{ inputs.x }} inside sh -c '...' is accepted with a warning that names the safe form", () => {
  const t = parseTemplate(
    lines('name: warn', 'inputs:', '  x: {}', 'steps:', '  - name: a', '    type: shell', "    run: sh -c 'echo {{ inputs.x }}'", '  - name: b', '    type: shell', '    run: echo {{ inputs.x }}'),
    '/tmp/tpl/warn.yaml',
  );
  assert.equal(t.warnings?.length, 1, JSON.stringify(t.warnings));
  assert.match(t.warnings![0]!, /^\/tmp\/tpl\/warn\.yaml:7: steps\[0\]\.run: warning: \{\{ inputs\.x \}\} inside a string that a second shell runs .*write "\$ATLAS_INPUT_X" there instead$/);
  const quiet = parseTemplate(lines('name: ok', 'inputs:', '  x: {}', 'steps:', '  - name: a', '    type: shell', '    run: sh -c \'echo "$ATLAS_INPUT_X"\''), '/tmp/tpl/ok.yaml');
  assert.equal(quiet.warnings, undefined);
});

test('templates: the file name must match the template name', async () => {
  const root = tempRoot('atlas-tpl-test-');
  try {
    const file = path.join(root, 'other.yaml');
    fs.writeFileSync(file, lines('name: mine', 'steps:', '  - name: a', '    type: shell', '    run: x'));
    await assert.rejects(loadTemplateFile(file), (err: unknown) => err instanceof TemplateError && err.message.includes(`${file}:1: name: is "mine" but the file is named other.yaml`));
    await assert.rejects(loadTemplateFile(path.join(root, 'missing.yaml')), (err: unknown) => isAtlasError(err, 'not_found'));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('templates: a user template overrides a built-in of the same name; built-ins are listed', async () => {
  const root = tempRoot('atlas-tpl-test-');
  try {
    const registry = new TemplateRegistry(root);
    const builtins = await registry.list();
    assert.deepEqual(
      builtins.map((t) => t.name),
      ['bugfix', 'ci', 'commit', 'demo', 'feature', 'task', 'validate'],
    );
    for (const t of builtins) {
      assert.equal(t.error, undefined, `${t.name}: ${t.error}`);
      assert.equal(t.builtin, true);
    }
    assert.equal((await registry.get('demo')).source, 'builtin:demo');
    fs.writeFileSync(path.join(root, 'demo.yaml'), lines('name: demo', 'description: mine', 'steps:', '  - name: a', '    type: shell', '    run: x'));
    const mine = await registry.get('demo');
    assert.equal(mine.description, 'mine');
    assert.equal(mine.builtin, false);
    const listed = (await registry.list()).find((t) => t.name === 'demo');
    assert.equal(listed?.overrides_builtin, true);
    await assert.rejects(registry.get('missing'), (err: unknown) => isAtlasError(err, 'not_found') && /available: bugfix, ci, commit, demo/.test(err.message));
    await assert.rejects(registry.get('../../etc/passwd'), (err: unknown) => isAtlasError(err, 'invalid_name'));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('templates: durations', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration(2), 2000);
  assert.equal(parseDuration('forever'), undefined);
  assert.equal(parseDuration('-1s'), undefined);
  assert.equal(parseDuration(-1), undefined);
});

test('a template file edited between two loads is read again, and each load gets its own copy', async () => {
  const root = await tempRoot();
  try {
    const file = path.join(root, 'edit.yaml');
    fs.writeFileSync(file, lines('name: edit', 'steps:', '  - name: one', '    type: shell', '    run: echo 1'));
    const first = await loadTemplateFile(file);
    first.steps[0]!.name = 'changed by a caller';
    const again = await loadTemplateFile(file);
    assert.equal(again.steps[0]!.name, 'one', 'a caller changing its copy does not change the next load');
    // Same size, so only the content (and the file's times) tell the edit apart.
    fs.writeFileSync(file, lines('name: edit', 'steps:', '  - name: two', '    type: shell', '    run: echo 2'));
    assert.equal((await loadTemplateFile(file)).steps[0]!.name, 'two');
    fs.writeFileSync(file, 'name: edit\nsteps: [\n');
    await assert.rejects(loadTemplateFile(file), TemplateError, 'a broken edit is reported, not hidden by the earlier parse');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
