// Shell completion (issue 18 item 7): `atlas completion bash|zsh|fish` prints a script; the
// script's `atlas __complete` completes commands, options, task ids, workspaces, templates
// and fixed words; bash really completes through it; the table matches every command's
// --help; and the completer loads no parser (yargs, zod, yaml) on a Tab.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { COMMANDS, GLOBAL_OPTIONS } from '../../src/cli/completion-spec.js';
import type { TaskRecord } from '../../src/store/records.js';
import { CLI_PATH, DIST, TestHome } from '../helpers/daemon.js';

describe('atlas completion', () => {
  let h: TestHome;
  let task: TaskRecord;
  let bin: string;
  const complete = async (...words: string[]) => (await h.ok(['__complete', '--', ...words])).stdout.split('\n').filter(Boolean);

  before(async () => {
    h = new TestHome({ templates: ['quick'] });
    await h.startDaemon();
    await h.createWorkspaces(['api', 'web']);
    task = await h.json<TaskRecord>(['start', 'quick', '-w', 'api', '--wait']);
    // An `atlas` on PATH for the shell scripts, bound to this home.
    bin = h.dir('bin');
    fs.writeFileSync(path.join(bin, 'atlas'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_PATH)} --home ${JSON.stringify(h.home)} "$@"\n`, { mode: 0o755 });
  });
  after(async () => {
    await h.dispose();
  });

  test('the scripts', async () => {
    assert.match((await h.ok(['completion', 'bash'])).stdout, /complete -o default -F _atlas_complete atlas/);
    assert.match((await h.ok(['completion', 'zsh'])).stdout, /^#compdef atlas/);
    assert.match((await h.ok(['completion', 'fish'])).stdout, /complete -c atlas -f -a '\(__atlas_complete\)'/);
  });

  test('commands, options, ids, workspaces, templates and fixed words', async () => {
    assert.deepEqual(await complete('st'), ['start']);
    assert.ok((await complete('')).includes('ps'));
    const opts = await complete('start', '--e');
    assert.deepEqual(opts, ['--env', '--env-clear']);
    assert.ok((await complete('start', '')).includes('quick'));
    assert.deepEqual(await complete('start', 'quick', '-w', ''), ['api', 'web']);
    assert.deepEqual(await complete('show', task.id.slice(0, 10)), [task.id]);
    assert.deepEqual(await complete('list', '--status', 'ab'), ['abandoned']);
    assert.deepEqual(await complete('daemon', 'st'), ['start', 'stop', 'status']);
    assert.deepEqual(await complete('workspace', 'show', 'w'), ['web']);
    // No daemon for that home: no ids, quickly, and no daemon started.
    const elsewhere = path.join(h.root, 'nohome');
    const r = spawnSync(process.execPath, [CLI_PATH, '__complete', '--', '--home', elsewhere, 'show', ''], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stdout, '');
    assert.equal(fs.existsSync(path.join(elsewhere, 'daemon.pid')), false);
  });

  test('bash completes through the script', () => {
    const script = `source <(atlas completion bash); COMP_WORDS=(atlas show ${task.id.slice(0, 12)}); COMP_CWORD=2; _atlas_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } });
    assert.equal(r.stdout, `${task.id}\n`, r.stderr);
  });

  test('the table knows every command and option that --help lists', async () => {
    const top = (await h.ok(['--help'])).stdout;
    const listed = [...top.matchAll(/^ {2}atlas ([a-z-]+)/gm)].map((m) => m[1]!);
    assert.ok(listed.length > 10, top);
    for (const cmd of listed) {
      const spec = COMMANDS[cmd];
      assert.ok(spec, `atlas ${cmd} is missing from src/cli/completion-spec.ts`);
      const help = (await h.ok([cmd, '--help'])).stdout;
      for (const m of help.matchAll(/(?:^|\s)--([a-z][a-z-]*)/gm)) {
        const opt = m[1]!;
        if ((GLOBAL_OPTIONS as readonly string[]).includes(opt)) continue;
        assert.ok(spec.options.includes(opt), `atlas ${cmd} --${opt} is missing from src/cli/completion-spec.ts`);
      }
    }
  });

  test('a Tab loads no argument parser or schema library', () => {
    const seen = new Set<string>();
    const heavy: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^import\s[^;]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
        else if (!spec.startsWith('node:')) heavy.push(`${path.relative(DIST, file)} imports ${spec}`);
      }
    };
    visit(path.join(DIST, 'src', 'cli', 'complete.js'));
    assert.deepEqual(heavy, []);
  });
});
