// ai steps against the fake agent (test/fixtures/fake-agent.ts): the prompt reaches the
// agent on stdin with inputs filled in, the agent's file edit lands in the workspace, its
// answer is saved as a versioned artifact; a template with an ai step is refused at start
// when no agent command is configured.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isAtlasError } from '../../src/errors.js';
import { FAKE_AGENT, readArtifact, run, withEnv, writeTemplate } from '../engine/helpers.js';

const AI_TEMPLATE = {
  name: 'agent',
  inputs: { topic: { required: true } },
  steps: [{ name: 'think', type: 'ai', prompt: 'Write about {{ inputs.topic }}.\nKeep it short.', timeout: '30s' }],
};

test('ai: the prompt goes to the agent, its edit is in the workspace and its answer is an artifact', async () => {
  await withEnv({ config: { ai_command: FAKE_AGENT } }, async (env) => {
    writeTemplate(env, AI_TEMPLATE);
    const t = await run(env, 'agent', { topic: 'crash recovery $(touch pwned)' });
    assert.equal(t.status, 'completed', t.error ?? '');
    const r = t.step_results[0]!;
    assert.equal(r.exit_code, 0);
    assert.ok(r.artifacts.includes('think.answer.1.md'), JSON.stringify(r.artifacts));

    const prompt = 'Write about crash recovery $(touch pwned).\nKeep it short.';
    // The agent's edit is visible in the workspace.
    assert.equal(fs.readFileSync(path.join(env.ws, 'agent-output.md'), 'utf8'), `# written by the fake agent\n\n${prompt}\n`);
    assert.equal(fs.readFileSync(path.join(env.ws, 'agent-calls.log'), 'utf8'), `${t.id} think 1\n`);
    // Its answer is kept.
    const answer = readArtifact(env, t, 'think.answer.1.md');
    assert.equal(answer, `ANSWER: done with "Write about crash recovery $(touch pwned)." (${Buffer.byteLength(prompt)} bytes of prompt)\n`);
    // A prompt is text, never run by a shell.
    assert.equal(fs.existsSync(path.join(env.ws, 'pwned')), false);
  });
});

test('ai: a failing agent fails the step, and its answer is still kept', async () => {
  await withEnv({ config: { ai_command: `FAKE_AGENT_EXIT=3 ${FAKE_AGENT}` } }, async (env) => {
    writeTemplate(env, AI_TEMPLATE);
    const t = await run(env, 'agent', { topic: 'x' });
    assert.equal(t.status, 'failed');
    const r = t.step_results[0]!;
    assert.equal(r.exit_code, 3);
    assert.match(r.error ?? '', /agent command exited with code 3/);
    assert.match(readArtifact(env, t, 'think.answer.1.md'), /^ANSWER: /);
  });
});

test('ai: a template with an ai step is refused at start when no ai.command is configured', async () => {
  await withEnv({ config: { ai_command: null } }, async (env) => {
    writeTemplate(env, AI_TEMPLATE);
    await assert.rejects(env.engine.startTask({ template: 'agent', workspace: env.wsName, inputs: { topic: 'x' } }), (err: unknown) => {
      assert.ok(isAtlasError(err, 'invalid_input'), String(err));
      assert.match(err.message, /'ai\.command'/);
      assert.match(err.message, /think/);
      assert.equal(err.details?.['config_key'], 'ai.command');
      return true;
    });
    assert.deepEqual(await env.engine.listTasks(), []);
    // A step with its own `command:` needs no configured agent.
    writeTemplate(env, { name: 'own', steps: [{ name: 'think', type: 'ai', prompt: 'hi', command: FAKE_AGENT }] });
    const t = await run(env, 'own');
    assert.equal(t.status, 'completed', t.error ?? '');
    assert.match(readArtifact(env, t, 'think.answer.1.md'), /ANSWER: done with "hi"/);
  });
});
