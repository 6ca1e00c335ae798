// shell steps: `run:` and `commands:`, the ATLAS_* environment, the output artifact, a
// timeout that kills the whole process tree, and a signal-killed child never counted as exit 0.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertDead, logOf, readArtifact, readPid, run, withEnv, writeTemplate } from '../engine/helpers.js';

test('shell: run and commands execute in the workspace with ATLAS_* variables and an output artifact', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'sh',
      inputs: { who: { default: 'world' } },
      steps: [
        { name: 'one', type: 'shell', run: 'echo hello > out1.txt; echo "id=$ATLAS_TASK_ID ws=$ATLAS_WORKSPACE step=$ATLAS_STEP attempt=$ATLAS_ATTEMPT who=$ATLAS_INPUT_WHO pwd=$(pwd)"' },
        { name: 'many', type: 'shell', commands: ['echo a >> out2.txt', { name: 'second', run: 'echo b >> out2.txt' }] },
        { name: 'sub', type: 'shell', cwd: 'nested', run: 'pwd > where.txt' },
      ],
    });
    fs.mkdirSync(path.join(env.ws, 'nested'));
    const t = await run(env, 'sh');
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.equal(t.current_step, 3);
    assert.deepEqual(
      t.steps.map((s) => [s.name, s.status, s.attempts]),
      [
        ['one', 'completed', 1],
        ['many', 'completed', 1],
        ['sub', 'completed', 1],
      ],
    );
    assert.equal(fs.readFileSync(path.join(env.ws, 'out1.txt'), 'utf8'), 'hello\n');
    assert.equal(fs.readFileSync(path.join(env.ws, 'out2.txt'), 'utf8'), 'a\nb\n');
    assert.equal(fs.realpathSync(fs.readFileSync(path.join(env.ws, 'nested', 'where.txt'), 'utf8').trim()), fs.realpathSync(path.join(env.ws, 'nested')));

    const r0 = t.step_results[0]!;
    assert.equal(r0.exit_code, 0);
    assert.equal(r0.signal, null);
    assert.equal(r0.status, 'completed');
    assert.ok(r0.artifacts.includes('one.output.1.log'), JSON.stringify(r0.artifacts));
    const out = readArtifact(env, t, 'one.output.1.log');
    assert.equal(out, `id=${t.id} ws=${env.wsName} step=one attempt=1 who=world pwd=${env.ws}\n`);
    // The output also streams into task.log.
    const outputs = (await logOf(env, t)).filter((r) => r.event === 'output' && r['step'] === 'one');
    assert.equal(outputs.map((r) => r['text']).join(''), out);
  });
});

test('shell: commands stop at the first failure, which fails the task with its exit code', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'stops',
      steps: [{ name: 'list', type: 'shell', commands: ['echo x >> f.txt', 'exit 3', 'echo y >> f.txt'] }],
    });
    const t = await run(env, 'stops');
    assert.equal(t.status, 'failed');
    assert.equal(fs.readFileSync(path.join(env.ws, 'f.txt'), 'utf8'), 'x\n');
    const r = t.step_results[0]!;
    assert.equal(r.status, 'failed');
    assert.equal(r.exit_code, 3);
    assert.match(r.error ?? '', /exit 3.*code 3/);
    assert.equal(t.steps[0]!.status, 'failed');
    assert.match(t.error ?? '', /step list failed/);
  });
});

test('shell: a timeout kills the whole process tree, grandchildren included', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'slow',
      steps: [{ name: 'hang', type: 'shell', timeout: '1s', run: `sh -c 'sleep 100 & echo $! > pid; sleep 100'` }],
    });
    const started = Date.now();
    const t = await run(env, 'slow');
    assert.equal(t.status, 'failed');
    const r = t.step_results[0]!;
    assert.equal(r.status, 'timed_out');
    assert.notEqual(r.exit_code, 0);
    assert.match(r.error ?? '', /timed out/);
    // The step ended because of the 1s timeout, not because the sleeps ran out.
    assert.ok(Date.now() - started < 30_000);
    await assertDead(readPid(path.join(env.ws, 'pid')), 'the grandchild sleep');
  });
});

test('shell: a child killed by a signal is never recorded as exit 0', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'killed',
      steps: [
        // The step's own shell kills itself: the process ends by SIGKILL, with no exit code.
        { name: 'self', type: 'shell', continue_on_error: true, run: 'echo before; kill -9 $$; echo after' },
        // A shell that ends by SIGTERM after `trap - TERM`.
        { name: 'term', type: 'shell', continue_on_error: true, run: 'trap - TERM; kill -TERM $$; exit 0' },
      ],
    });
    const t = await run(env, 'killed');
    assert.equal(t.status, 'completed'); // continue_on_error lets the task go on
    const [self, term] = t.step_results;
    assert.equal(self!.status, 'failed');
    assert.equal(self!.exit_code, null);
    assert.equal(self!.signal, 'SIGKILL');
    assert.match(self!.error ?? '', /SIGKILL/);
    assert.equal(term!.status, 'failed');
    assert.equal(term!.exit_code, null);
    assert.equal(term!.signal, 'SIGTERM');
    assert.deepEqual(
      t.steps.map((s) => s.status),
      ['failed', 'failed'],
    );
    assert.ok(!readArtifact(env, t, 'self.output.1.log').includes('after'));
  });
});

test('shell: a child killed by a signal without continue_on_error fails the task', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, { name: 'killed2', steps: [{ name: 'self', type: 'shell', run: 'kill -KILL $$' }, { name: 'never', type: 'shell', run: 'touch never' }] });
    const t = await run(env, 'killed2');
    assert.equal(t.status, 'failed');
    assert.equal(t.step_results.length, 1);
    assert.equal(t.step_results[0]!.exit_code, null);
    assert.equal(t.step_results[0]!.signal, 'SIGKILL');
    assert.equal(fs.existsSync(path.join(env.ws, 'never')), false);
  });
});

test('shell: a tree that ignores SIGTERM is SIGKILLed after the grace period', async () => {
  await withEnv({ config: { kill_grace_ms: 200 } }, async (env) => {
    writeTemplate(env, {
      name: 'stubborn',
      // An ignored signal stays ignored across exec, so the grandchild sleep ignores SIGTERM too.
      steps: [{ name: 'hang', type: 'shell', timeout: '1s', run: `trap '' TERM; sh -c 'sleep 100 & echo $! > pid; wait'` }],
    });
    const t = await run(env, 'stubborn');
    assert.equal(t.status, 'failed');
    assert.equal(t.step_results[0]!.status, 'timed_out');
    assert.equal(t.step_results[0]!.exit_code, null);
    assert.equal(t.step_results[0]!.signal, 'SIGKILL');
    await assertDead(readPid(path.join(env.ws, 'pid')), 'the TERM-ignoring grandchild');
  });
});

test('shell: template env and step env reach the command; inputs override neither', async () => {
  await withEnv({}, async (env) => {
    writeTemplate(env, {
      name: 'envs',
      env: { LEVEL: 'template', SHARED: 'from-template' },
      steps: [{ name: 'show', type: 'shell', env: { SHARED: 'from-step', NUM: 3 }, run: 'echo "$LEVEL $SHARED $NUM" > env.txt' }],
    });
    const t = await run(env, 'envs');
    assert.equal(t.status, 'completed');
    assert.equal(fs.readFileSync(path.join(env.ws, 'env.txt'), 'utf8'), 'template from-step 3\n');
  });
});

test('shell: the peak resident memory of the step\'s process tree is recorded with the attempt', { skip: fs.existsSync('/proc/self/status') ? false : 'no /proc here' }, async () => {
  await withEnv({}, async (env) => {
    // A grandchild of the gate shell touches 64 MB and holds it for 3 s (the tree is sampled every 0.1 s).
    const hold = `${JSON.stringify(process.execPath)} -e "const b=Buffer.alloc(64*1048576,1); setTimeout(()=>b.length,3000)"`;
    writeTemplate(env, { name: 'mem', steps: [{ name: 'big', type: 'shell', run: `${hold}; true` }, { name: 'small', type: 'shell', run: 'true' }] });
    const t = await run(env, 'mem');
    assert.equal(t.status, 'completed', t.error ?? '');
    const big = t.step_results[0]!.peak_rss_kb;
    assert.equal(typeof big, 'number', JSON.stringify(t.step_results[0]));
    assert.ok(big! >= 64 * 1024, `peak ${big} KB is below the 64 MB the step held`);
    const small = t.step_results[1]!.peak_rss_kb;
    assert.ok(small === undefined || small === null || small < 64 * 1024, `a bare true peaked at ${small} KB`);
  });
});
