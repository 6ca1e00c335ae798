// `atlas daemon <command>` (issue 10): each daemon command is its own yargs command, so its
// --help lists only its own options, an option of another command is refused, and a bad
// --timeout is refused by every command that takes one. No daemon runs in these tests.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { TestHome, expectExit } from '../helpers/daemon.js';

const OWN: Record<string, string[]> = {
  start: [],
  stop: ['timeout', 'detach'],
  restart: ['timeout'],
  reload: [],
  status: [],
  run: ['timeout', 'quiet'],
  'install-service': ['print'],
};
const ALL = ['timeout', 'detach', 'quiet', 'print'];
/** The Options section of a --help text (descriptions above it may name options). */
const options = (help: string) => help.slice(help.indexOf('\nOptions:'));

describe('atlas daemon commands', () => {
  const h = new TestHome();
  after(() => h.dispose());

  test('each command help lists its own options and no other', async () => {
    const group = (await h.ok(['daemon', '--help'])).stdout;
    for (const [cmd, own] of Object.entries(OWN)) {
      assert.match(group, new RegExp(`atlas daemon ${cmd} `), `daemon --help lists ${cmd}`);
      const help = options((await h.ok(['daemon', cmd, '--help'])).stdout);
      for (const opt of ALL) assert.equal(help.includes(`--${opt}`), own.includes(opt), `atlas daemon ${cmd} --help and --${opt}:\n${help}`);
    }
    // The group itself has no action options.
    for (const opt of ALL) assert.equal(options(group).includes(`--${opt}`), false, `daemon --help lists --${opt}`);
  });

  test("another command's option, an unknown command and a bad --timeout are usage errors", async () => {
    assert.match(expectExit(await h.cli(['daemon', 'stop', '--print']), 2).stderr, /Unknown argument: print/);
    assert.match(expectExit(await h.cli(['daemon', 'start', '--timeout', '5s']), 2).stderr, /Unknown argument: timeout/);
    assert.match(expectExit(await h.cli(['daemon', 'bogus']), 2).stderr, /name a daemon command: start, stop, restart/);
    for (const cmd of ['stop', 'run']) assert.match(expectExit(await h.cli(['daemon', cmd, '--timeout', 'soon']), 2).stderr, /--timeout: expected a duration such as 10s, got soon/);
  });
});
