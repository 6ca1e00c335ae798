// The engine running tasks: retries with backoff, resume, cancel (killing the tree), a long
// task whose task.json agrees with its task.log, the output cap, and inputs (checked at
// start, never able to inject shell syntax).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { assertDead, logOf, readArtifact, readPid, readTaskFile, resultSummary, run, settle, taskDir, waitFor, withEnv, writeTemplate } from './helpers.js';

test('retries: a command failing twice is retried with backoff; attempts 1..3, the last completed', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'flaky',
      steps: [
        {
          name: 'flaky',
          type: 'shell',
          retries: { max: 3, backoff: '50ms' },
          run: 'echo $ATLAS_ATTEMPT >> attempts; n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ] || { echo "fail $n"; exit 7; }',
        },
      ],
    });
    const t = await run(env, 'flaky');
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.equal(t.step_results.length, 3);
    assert.deepEqual(
      t.step_results.map((r) => [r.attempt, r.status, r.exit_code]),
      [
        [1, 'failed', 7],
        [2, 'failed', 7],
        [3, 'completed', 0],
      ],
    );
    assert.equal(t.steps[0]!.attempts, 3);
    assert.equal(fs.readFileSync(path.join(env.ws, 'attempts'), 'utf8'), '1\n2\n3\n');
    // Each attempt keeps its own output.
    assert.equal(readArtifact(env, t, 'flaky.output.1.log'), 'fail 1\n');
    assert.equal(readArtifact(env, t, 'flaky.output.2.log'), 'fail 2\n');
    // Exponential backoff with jitter: 50ms then 100ms ceilings, at least half of each.
    const retries = (await logOf(env, t)).filter((r) => r.event === 'step_retry');
    assert.deepEqual(
      retries.map((r) => [r['attempt'], r['next_attempt']]),
      [
        [1, 2],
        [2, 3],
      ],
    );
    const delays = retries.map((r) => Number(r['delay_ms']));
    assert.ok(delays[0]! >= 25 && delays[0]! <= 50, `first delay ${delays[0]}`);
    assert.ok(delays[1]! >= 50 && delays[1]! <= 100, `second delay ${delays[1]}`);
    for (let i = 0; i < 2; i++) {
      const gap = Date.parse(t.step_results[i + 1]!.started_at) - Date.parse(t.step_results[i]!.completed_at);
      assert.ok(gap >= delays[i]! - 2, `attempt ${i + 2} started ${gap} ms after attempt ${i + 1}, before its ${delays[i]} ms backoff`);
    }
    // Retries are not status changes.
    assert.deepEqual(
      t.transitions.map((x) => x.to_status),
      ['pending', 'running', 'completed'],
    );
  });
});

test('retries: when every retry fails the task fails after max + 1 attempts', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'never', steps: [{ name: 'no', type: 'shell', retries: { max: 2, backoff: '10ms' }, run: 'exit 2' }] });
    const t = await run(env, 'never');
    assert.equal(t.status, 'failed');
    assert.deepEqual(resultSummary(t), ['no#1:failed', 'no#2:failed', 'no#3:failed']);
  });
});

test('resume: a failed task re-runs only the failed step, as a new attempt, and completes', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'fix',
      steps: [
        { name: 'first', type: 'shell', run: 'echo x >> first-runs' },
        { name: 'broken', type: 'shell', run: '[ -f fixed ] || { echo broken; exit 2; }' },
        { name: 'last', type: 'shell', run: 'echo x >> last-runs' },
      ],
    });
    const t = await run(env, 'fix');
    assert.equal(t.status, 'failed');
    assert.equal(t.current_step, 1);
    assert.match(t.error ?? '', /step broken failed/);
    fs.writeFileSync(path.join(env.ws, 'fixed'), '');
    const resumed = await env.engine.resume(t.id);
    assert.equal(resumed.status, 'pending');
    assert.equal(resumed.error, null);
    const done = await settle(env.engine, t.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(resultSummary(done), ['first#1:completed', 'broken#1:failed', 'broken#2:completed', 'last#1:completed']);
    assert.equal(done.step_results[1]!.exit_code, 2);
    assert.equal(fs.readFileSync(path.join(env.ws, 'first-runs'), 'utf8'), 'x\n');
    assert.equal(fs.readFileSync(path.join(env.ws, 'last-runs'), 'utf8'), 'x\n');
    await assert.rejects(env.engine.resume(t.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
  });
});

test('cancel: a running task has its process tree killed and ends abandoned', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'long',
      steps: [
        { name: 'hang', type: 'shell', run: `sh -c 'sleep 100 & echo $! > pid; wait'` },
        { name: 'never', type: 'shell', run: 'touch never' },
      ],
    });
    const started = await env.engine.startTask({ template: 'long', workspace: env.wsName });
    const pidFile = path.join(env.ws, 'pid');
    await waitFor('the step to write its pid', () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n'));
    const grandchild = readPid(pidFile);
    const t = await env.engine.cancel(started.id);
    assert.equal(t.status, 'abandoned');
    assert.ok(t.completed_at);
    await assertDead(grandchild, 'the grandchild sleep');
    const onDisk = readTaskFile(env, env.wsName, started.id);
    assert.equal(onDisk.status, 'abandoned');
    assert.equal(onDisk.step_results.length, 1);
    assert.equal(onDisk.step_results[0]!.status, 'canceled');
    assert.notEqual(onDisk.step_results[0]!.exit_code, 0);
    assert.deepEqual(
      onDisk.transitions.map((x) => x.to_status),
      ['pending', 'running', 'abandoned'],
    );
    assert.equal(fs.existsSync(path.join(env.ws, 'never')), false);
    await assert.rejects(env.engine.cancel(started.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
  });
});

test('cancel: a queued task and a failed task end abandoned without running', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'block', steps: [{ name: 'b', type: 'shell', timeout: '20s', run: 'until [ -f release ]; do sleep 0.02; done' }] });
    writeTemplate(env, { name: 'mark', steps: [{ name: 'm', type: 'shell', run: 'touch marked' }] });
    writeTemplate(env, { name: 'bad', steps: [{ name: 'x', type: 'shell', run: 'exit 1' }] });
    const failed = await run(env, 'bad');
    assert.equal(failed.status, 'failed');
    assert.equal((await env.engine.cancel(failed.id)).status, 'abandoned');

    const blocker = await env.engine.startTask({ template: 'block', workspace: env.wsName });
    const queued = await env.engine.startTask({ template: 'mark', workspace: env.wsName });
    assert.equal((await env.engine.getTask(queued.id)).status, 'pending');
    const canceled = await env.engine.cancel(queued.id);
    assert.equal(canceled.status, 'abandoned');
    fs.writeFileSync(path.join(env.ws, 'release'), '');
    assert.equal((await settle(env.engine, blocker.id)).status, 'completed');
    assert.equal(fs.existsSync(path.join(env.ws, 'marked')), false);
    assert.equal((await env.engine.getTask(queued.id)).step_results.length, 0);
  });
});

test('cancel: during a retry backoff, while awaiting approval, and during a wait, the task ends abandoned at once', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'backoff', steps: [{ name: 'x', type: 'shell', retries: { max: 5, backoff: '60s' }, run: 'exit 1' }] });
    writeTemplate(env, { name: 'ask', steps: [{ name: 'ok', type: 'human' }] });
    writeTemplate(env, { name: 'sleepy', steps: [{ name: 'w', type: 'wait', duration: '60s' }] });

    const b = await env.engine.startTask({ template: 'backoff', workspace: env.wsName });
    await waitFor('the first retry to be scheduled', () => readTaskFile(env, env.wsName, b.id).steps[0]!.next_attempt_at ?? undefined);
    const started = Date.now();
    assert.equal((await env.engine.cancel(b.id)).status, 'abandoned');
    assert.ok(Date.now() - started < 10_000, 'cancel did not wait out the backoff');
    assert.deepEqual(resultSummary(await env.engine.getTask(b.id)), ['x#1:failed']);

    const a = await env.engine.startTask({ template: 'ask', workspace: env.wsName });
    assert.equal((await settle(env.engine, a.id)).status, 'awaiting_approval');
    assert.equal((await env.engine.cancel(a.id)).status, 'abandoned');
    await assert.rejects(env.engine.approve(a.id), (e: unknown) => isAtlasError(e, 'not_allowed'));

    const w = await env.engine.startTask({ template: 'sleepy', workspace: env.wsName });
    await waitFor('the wait deadline', () => readTaskFile(env, env.wsName, w.id).steps[0]!.deadline ?? undefined);
    assert.equal((await env.engine.cancel(w.id)).status, 'abandoned');
    // Each cancel is logged as a status change.
    for (const id of [b.id, a.id, w.id]) {
      const log = await logOf(env, { id, workspace: env.wsName });
      assert.ok(log.some((r) => r.event === 'transition' && r['to_status'] === 'abandoned'), `cancel of ${id} in task.log`);
    }
  });
});

test('delete: a finished task can be deleted, a running one cannot; a stopped engine refuses work', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'one', steps: [{ name: 's', type: 'shell', run: 'true' }] });
    writeTemplate(env, { name: 'block', steps: [{ name: 'b', type: 'shell', timeout: '20s', run: 'until [ -f release ]; do sleep 0.02; done' }] });
    const done = await run(env, 'one');
    await env.engine.deleteTask(done.id);
    await assert.rejects(env.engine.getTask(done.id), (e: unknown) => isAtlasError(e, 'not_found'));
    assert.equal(fs.existsSync(taskDir(env, env.wsName, done.id)), false);

    const busy = await env.engine.startTask({ template: 'block', workspace: env.wsName });
    await assert.rejects(env.engine.deleteTask(busy.id), (e: unknown) => isAtlasError(e, 'not_allowed'));
    fs.writeFileSync(path.join(env.ws, 'release'), '');
    assert.equal((await settle(env.engine, busy.id)).status, 'completed');

    await env.engine.shutdown();
    assert.equal(env.engine.lifecycle, 'stopped');
    await assert.rejects(env.engine.startTask({ template: 'one', workspace: env.wsName }), (e: unknown) => isAtlasError(e, 'not_allowed'));
  });
});

test('consistency: a 50-step task ends with task.json agreeing with task.log', async () => {
  await withEnv({}, async (env) => {
    const steps = Array.from({ length: 50 }, (_, i) => ({ name: `s${String(i).padStart(2, '0')}`, type: 'shell', run: `echo step ${i}` }));
    writeTemplate(env, { name: 'fifty', steps });
    const t = await run(env, 'fifty', {}, 60_000);
    assert.equal(t.status, 'completed');
    const onDisk = readTaskFile(env, env.wsName, t.id);
    assert.deepEqual(onDisk, t);
    assert.equal(onDisk.step_results.length, 50);
    assert.equal(onDisk.current_step, 50);

    const log = await logOf(env, t);
    const finished = log.filter((r) => r.event === 'step_finished');
    assert.equal(finished.length, 50);
    finished.forEach((rec, i) => {
      const { level: _l, time: _t, event: _e, msg: _m, ...fields } = rec;
      assert.deepEqual(fields, { ...onDisk.step_results[i] }, `step_finished #${i} matches step_results[${i}]`);
    });
    // Steps ran in order, each once, each with its output.
    assert.deepEqual(
      onDisk.step_results.map((r) => [r.step_index, r.step_name, r.attempt, r.status]),
      steps.map((s, i) => [i, s.name, 1, 'completed']),
    );
    const started = log.filter((r) => r.event === 'step_started').map((r) => r['step_index']);
    assert.deepEqual(started, steps.map((_, i) => i));
    for (let i = 0; i < 50; i += 7) assert.equal(readArtifact(env, t, `${steps[i]!.name}.output.1.log`), `step ${i}\n`);
    // Revision: 1 at creation, then two checkpoints per shell step (process recorded, result).
    assert.equal(onDisk.revision, 1 + 2 * 50);
    const bak = JSON.parse(fs.readFileSync(path.join(taskDir(env, env.wsName, t.id), 'task.json.bak'), 'utf8')) as { revision: number; status: string };
    // The backup is the last durable checkpoint: the one before the last pre-spawn record.
    assert.equal(bak.revision, onDisk.revision - 2);
    // Status changes agree too.
    const logged = log.filter((r) => r.event === 'transition').map((r) => r['to_status']);
    assert.deepEqual(logged, ['running', 'completed']);
    assert.deepEqual(
      onDisk.transitions.map((x) => x.to_status),
      ['pending', 'running', 'completed'],
    );
    assert.equal(log[0]!.event, 'task_created');
  });
});

test('output cap: a command printing 100 KB keeps its head and its tail, and the log, the artifact and the result say what was cut', async () => {
  const cap = 2048;
  await withEnv({ config: { output_cap: cap } }, async (env) => {
    // The error goes to stdout like the rest: stdout and stderr are two files the daemon
    // reads in turn, so their order relative to each other is not kept.
    writeTemplate(env, {
      name: 'loud',
      steps: [{ name: 'loud', type: 'shell', run: `echo first; head -c 102400 /dev/zero | tr '\\0' x; echo; echo 'the error at the end'` }],
    });
    const t = await run(env, 'loud');
    assert.equal(t.status, 'completed');
    const r = t.step_results[0]!;
    assert.equal(r.output_truncated, true);
    assert.ok(r.output_bytes >= 102400, `output_bytes ${r.output_bytes}`);
    const log = await logOf(env, t);
    const cut = log.filter((x) => x.event === 'output_truncated');
    assert.equal(cut.length, 1);
    assert.equal(cut[0]!['cap_bytes'], cap);
    assert.equal(cut[0]!['head_bytes'], cap / 4);
    assert.equal(cut[0]!['tail_bytes'], cap - cap / 4);
    assert.equal(cut[0]!['cut_bytes'], r.output_bytes - cap);
    const outputs = log.filter((x) => x.event === 'output');
    const logged = outputs.reduce((n, x) => n + Buffer.byteLength(String(x['text'])), 0);
    assert.equal(logged, cap);
    // The head first, then the marker, then the tail with the error printed last.
    assert.match(String(outputs[0]!['text']), /^first\n/);
    assert.ok(log.indexOf(cut[0]!) < log.indexOf(outputs.find((x) => String(x['text']).includes('the error at the end'))!));
    const out = readArtifact(env, t, 'loud.output.1.log');
    assert.ok(out.length >= cap && out.length <= cap + 200, `artifact is ${out.length} bytes`);
    assert.match(out, /^first\n/);
    assert.match(out, new RegExp(`\\[atlas: ${r.output_bytes - cap} bytes of output were cut here; the first 512 and the last 1536 bytes are kept\\]`));
    assert.match(out, /the error at the end\n$/);
    assert.ok(fs.statSync(path.join(taskDir(env, env.wsName, t.id), 'task.log')).size < 64 * 1024);
  });
});

test('output cap: output that fills the cap exactly is kept whole; one byte more is cut from the middle', async () => {
  const cap = 2048;
  await withEnv({ config: { output_cap: cap } }, async (env) => {
    writeTemplate(env, {
      name: 'exact',
      steps: [
        { name: 'exact', type: 'shell', run: `head -c ${cap} /dev/zero | tr '\\0' y` },
        { name: 'over', type: 'shell', run: `head -c ${cap} /dev/zero | tr '\\0' y; sleep 0.05; echo more` },
      ],
    });
    const t = await run(env, 'exact');
    assert.equal(t.status, 'completed');
    const [exact, over] = t.step_results;
    assert.equal(exact!.output_bytes, cap);
    assert.equal(exact!.output_truncated, false);
    assert.equal(readArtifact(env, t, 'exact.output.1.log'), 'y'.repeat(cap));
    assert.equal(over!.output_bytes, cap + 5);
    assert.equal(over!.output_truncated, true);
    const log = await logOf(env, t);
    assert.equal(log.filter((x) => x.event === 'output_truncated').length, 1);
    const out = readArtifact(env, t, 'over.output.1.log');
    assert.equal(out, `${'y'.repeat(cap / 4)}\n[atlas: 5 bytes of output were cut here; the first 512 and the last 1536 bytes are kept]\n${'y'.repeat(cap - cap / 4 - 5)}more\n`);
  });
});

test('inputs: values that look like shell syntax arrive literally and never run', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'inject',
      inputs: { x: { required: true } },
      steps: [
        { name: 'bare', type: 'shell', run: `printf '%s' {{ inputs.x }} > via-template.txt` },
        { name: 'dquoted', type: 'shell', run: `printf '%s' "{{ inputs.x }}" > via-dquotes.txt` },
        { name: 'squoted', type: 'shell', run: `printf '%s' '{{ inputs.x }}' > via-squotes.txt` },
        { name: 'env', type: 'shell', run: `printf '%s' "$ATLAS_INPUT_X" > via-env.txt` },
        { name: 'check', type: 'validation', commands: [`test "$ATLAS_INPUT_X" = {{ inputs.x }}`] },
        { name: 'ci', type: 'ci', command: `printf '%s' {{ inputs.x }} > via-ci.txt`, interval: '50ms', timeout: '10s' },
        { name: 'subst', type: 'shell', run: `v="$(printf '%s' {{ inputs.x }})"; printf '%s' "$v" > via-subst.txt` },
        { name: 'heredoc', type: 'shell', run: `cat > via-heredoc.txt <<EOF\n{{ inputs.x }}\nEOF` },
      ],
    });
    const values = ['$(touch pwned)', `'; touch pwned2; '`, '`touch pwned3`', '"; touch pwned4; "', 'a b\n*\\ $HOME ${IFS}'];
    for (const x of values) {
      for (const f of fs.readdirSync(env.ws)) fs.rmSync(path.join(env.ws, f));
      const t = await run(env, 'inject', { x });
      assert.equal(t.status, 'completed', `${JSON.stringify(x)}: ${t.error}`);
      for (const f of ['via-template.txt', 'via-dquotes.txt', 'via-squotes.txt', 'via-env.txt', 'via-ci.txt']) {
        assert.equal(fs.readFileSync(path.join(env.ws, f), 'utf8'), x, `${f} for ${JSON.stringify(x)}`);
      }
      assert.equal(fs.readFileSync(path.join(env.ws, 'via-subst.txt'), 'utf8'), x.replace(/\n+$/, ''));
      assert.ok(fs.readFileSync(path.join(env.ws, 'via-heredoc.txt'), 'utf8').includes(x));
      const created = fs.readdirSync(env.ws).filter((f) => f.startsWith('pwned'));
      assert.deepEqual(created, [], `input ${JSON.stringify(x)} ran a command`);
      assert.equal(t.inputs['x'], x);
    }
    // Nothing ran in the home or the temp root either.
    for (const dir of [env.root, env.home]) assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('pwned')), []);
  });
});

test('inputs: a missing required input and an unknown input are refused at start, before any file is written', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'needs',
      inputs: { target: { required: true, description: 'what to build' }, mode: { default: 'fast' } },
      steps: [{ name: 's', type: 'shell', run: 'echo "$ATLAS_INPUT_TARGET $ATLAS_INPUT_MODE" > got.txt' }],
    });
    await assert.rejects(env.engine.startTask({ template: 'needs', workspace: env.wsName }), (e: unknown) => {
      assert.ok(isAtlasError(e, 'invalid_input'));
      assert.match(e.message, /needs input 'target' \(what to build\)/);
      return true;
    });
    await assert.rejects(env.engine.startTask({ template: 'needs', workspace: env.wsName, inputs: { target: 'a', colour: 'red' } }), (e: unknown) => {
      assert.ok(isAtlasError(e, 'invalid_input'));
      assert.match(e.message, /no input 'colour'; its inputs are: target, mode/);
      return true;
    });
    await assert.rejects(env.engine.startTask({ template: 'needs', workspace: env.wsName, inputs: { target: 'a\0b' } }), (e: unknown) => isAtlasError(e, 'invalid_input'));
    await assert.rejects(env.engine.startTask({ template: 'nope', workspace: env.wsName }), (e: unknown) => isAtlasError(e, 'not_found') && /available: .*demo/.test(e.message));
    await assert.rejects(env.engine.startTask({ template: 'needs', workspace: 'nowhere', inputs: { target: 'a' } }), (e: unknown) => isAtlasError(e, 'not_found'));
    await assert.rejects(env.engine.startTask({ template: '../etc', workspace: env.wsName }), (e: unknown) => isAtlasError(e, 'invalid_name'));
    assert.deepEqual(await env.engine.listTasks(), []);
    assert.equal(fs.existsSync(path.join(env.home, 'workspaces', env.wsName, 'tasks')) ? fs.readdirSync(path.join(env.home, 'workspaces', env.wsName, 'tasks')).length : 0, 0);

    // Defaults fill in. An ATLAS_INPUT_* in the engine's own environment never stands in for an input.
    writeTemplate(env, {
      name: 'opt',
      inputs: { extra: { description: 'optional, no default' } },
      steps: [{ name: 's', type: 'shell', run: `printf '[%s|%s]' {{ inputs.extra }} "$ATLAS_INPUT_EXTRA" > opt.txt` }],
    });
    process.env['ATLAS_INPUT_EXTRA'] = 'leaked';
    try {
      const o = await run(env, 'opt');
      assert.equal(o.status, 'completed');
      assert.equal(fs.readFileSync(path.join(env.ws, 'opt.txt'), 'utf8'), '[|]');
    } finally {
      delete process.env['ATLAS_INPUT_EXTRA'];
    }
    const t = await run(env, 'needs', { target: 'app' });
    assert.equal(t.status, 'completed');
    assert.deepEqual(t.inputs, { target: 'app', mode: 'fast' });
    assert.equal(fs.readFileSync(path.join(env.ws, 'got.txt'), 'utf8'), 'app fast\n');
  });
});
