// Large inputs (issue 9 item 15): `-i name=@file` reads a value from a file, and an input too
// big for a step's environment is refused at start, naming the limit, instead of failing
// later with E2BIG.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestHome, expectExit } from '../helpers/daemon.js';

describe('inputs from files, and the size limit', () => {
  let h: TestHome;
  before(async () => {
    h = new TestHome();
    h.writeTemplate('echo', 'name: echo\ninputs:\n  text: { required: true }\nsteps:\n  - name: say\n    type: shell\n    run: printf %s "$ATLAS_INPUT_TEXT" > said.txt\n');
    await h.startDaemon();
    await h.createWorkspaces(['w']);
  });
  after(async () => {
    await h.dispose();
  });

  test('-i name=@file passes the file content; @@ is a literal @', async () => {
    const file = path.join(h.dir('inputs'), 'text.txt');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'from a file\nline two');
    expectExit(await h.cli(['start', 'echo', '-w', 'w', '-i', `text=@${file}`, '--wait']), 0);
    assert.equal(fs.readFileSync(path.join(h.dir('w'), 'said.txt'), 'utf8'), 'from a file\nline two');
    expectExit(await h.cli(['start', 'echo', '-w', 'w', '-i', 'text=@@home', '--wait']), 0);
    assert.equal(fs.readFileSync(path.join(h.dir('w'), 'said.txt'), 'utf8'), '@home');
    const missing = await h.cli(['start', 'echo', '-w', 'w', '-i', 'text=@/nonexistent/file']);
    expectExit(missing, 2);
    assert.match(missing.stderr, /cannot read \/nonexistent\/file: ENOENT/);
  });

  test('an input over 128 KiB is refused at start with the limit named; nothing is started', async () => {
    const file = path.join(h.dir('inputs'), 'big.txt');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'x'.repeat(140 * 1024));
    const before = (await h.listTasks()).length;
    const r = await h.cli(['start', 'echo', '-w', 'w', '-i', `text=@${file}`]);
    expectExit(r, 2);
    assert.match(r.stderr, /input text is 143360 bytes.*at most 131071 bytes \(128 KiB/);
    assert.equal((await h.listTasks()).length, before);
  });
});
