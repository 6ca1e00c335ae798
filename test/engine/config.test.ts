// config.yaml (DESIGN §8) as the engine reads it: defaults, ai.command, step defaults, and
// unknown keys or bad values refused with the key's name.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CONFIG, loadConfig, parseConfig } from '../../src/config/config.js';
import { Engine } from '../../src/engine/engine.js';
import { isAtlasError } from '../../src/errors.js';
import { tempRoot } from './helpers.js';

test('config: a missing file means all defaults; values are read and defaulted', async () => {
  const root = tempRoot('atlas-config-test-');
  try {
    assert.deepEqual(await loadConfig(path.join(root, 'config.yaml')), DEFAULT_CONFIG);
    const c = parseConfig(
      ['max_concurrent_tasks: 2', 'ai:', '  command: claude -p', 'step_defaults:', '  timeout: 90s', '  retries: { max: 2, backoff: 250ms }', '  output_cap: 64kb', '  kill_grace: 1s', 'log_level: debug'].join('\n'),
      'config.yaml',
    );
    assert.deepEqual(c, {
      ...DEFAULT_CONFIG,
      max_concurrent_tasks: 2,
      ai_command: 'claude -p',
      step_timeout_ms: 90_000,
      retries: { max: 2, backoff_ms: 250, max_backoff_ms: DEFAULT_CONFIG.retries.max_backoff_ms },
      output_cap: 64 * 1024,
      kill_grace_ms: 1000,
      log_level: 'debug',
      http: null,
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('config: the shared store settings (store, store_schema, lease_ttl, workspaces)', () => {
  const c = parseConfig(['store: postgres://atlas@db.example/atlas', 'store_schema: team_a', 'lease_ttl: 5s', 'workspaces: [api, web]'].join('\n'), 'config.yaml');
  assert.equal(c.store_url, 'postgres://atlas@db.example/atlas');
  assert.equal(c.store_schema, 'team_a');
  assert.equal(c.lease_ttl_ms, 5000);
  assert.deepEqual(Object.keys(c.workspaces), ['api', 'web']);
  assert.equal(parseConfig('store: fs', 'config.yaml').store_url, null);
  assert.throws(() => parseConfig('store: mysql://x', 'config.yaml'), /store: expected 'fs' or a postgres/);
  assert.throws(() => parseConfig('store_schema: "Bad-Name"', 'config.yaml'), /store_schema/);
});

test('config: unknown keys and bad values are refused with the key name', () => {
  const bad = (text: string, pattern: RegExp) =>
    assert.throws(
      () => parseConfig(text, '/home/x/config.yaml'),
      (e: unknown) => isAtlasError(e, 'config_invalid') && pattern.test(e.message) && e.message.startsWith('/home/x/config.yaml'),
      text,
    );
  bad('max_concurent_tasks: 3', /max_concurent_tasks: unknown key/);
  bad('max_concurrent_tasks: 0', /max_concurrent_tasks:/);
  bad('ai:\n  comand: x', /ai\.comand: unknown key/);
  bad('step_defaults:\n  timeout: soon', /step_defaults\.timeout: expected a duration/);
  bad('step_defaults:\n  output_cap: lots', /step_defaults\.output_cap/);
  bad('log_level: loud', /log_level/);
  bad('a: [', /not valid YAML/);
});

test('config: the engine reads config.yaml from its home, and names ai.command when it is missing', async () => {
  const root = tempRoot('atlas-config-test-');
  const home = path.join(root, 'home');
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, 'config.yaml'), 'max_concurrent_tasks: 3\n');
  const engine = await Engine.open({ home });
  try {
    assert.equal(engine.config.max_concurrent_tasks, 3);
    assert.equal(engine.config.ai_command, null);
    await engine.start();
    fs.mkdirSync(path.join(root, 'ws'));
    await engine.store.workspaces.create({ name: 'ws', path: path.join(root, 'ws'), kind: 'path', repo: null, branch: null });
    await assert.rejects(engine.startTask({ template: 'task', workspace: 'ws', inputs: { description: 'x' } }), (e: unknown) => {
      assert.ok(isAtlasError(e, 'invalid_input'));
      assert.ok(e.message.includes(`'ai.command' in ${path.join(home, 'config.yaml')}`), e.message);
      return true;
    });
  } finally {
    await engine.shutdown();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('config: http.listen is host:port on loopback unless allow_remote is true', () => {
  assert.deepEqual(parseConfig('http:\n  listen: "127.0.0.1:7390"\n', 'c.yaml').http, { host: '127.0.0.1', port: 7390, allow_remote: false });
  assert.deepEqual(parseConfig('http:\n  listen: "[::1]:0"\n', 'c.yaml').http, { host: '::1', port: 0, allow_remote: false });
  assert.deepEqual(parseConfig('http:\n  listen: "localhost:8080"\n', 'c.yaml').http, { host: 'localhost', port: 8080, allow_remote: false });
  assert.deepEqual(parseConfig('http:\n  listen: "0.0.0.0:7390"\n  allow_remote: true\n', 'c.yaml').http, { host: '0.0.0.0', port: 7390, allow_remote: true });
  for (const [text, pattern] of [
    ['http:\n  listen: "0.0.0.0:7390"\n', /http\.listen: "0\.0\.0\.0:7390" is not a loopback address.*allow_remote/],
    ['http:\n  listen: "192.168.1.5:7390"\n', /not a loopback address/],
    ['http:\n  listen: "127.0.0.1"\n', /http\.listen: expected host:port/],
    ['http:\n  listen: "127.0.0.1:99999"\n', /expected host:port/],
    ['http:\n  listen: "127.0.0.1:80"\n  tls: true\n', /http\.tls: unknown key|tls/],
  ] as const) {
    assert.throws(() => parseConfig(text, 'c.yaml'), (e: unknown) => isAtlasError(e, 'config_invalid') && pattern.test(e.message), text);
  }
});
