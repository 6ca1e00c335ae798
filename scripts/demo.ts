// npm run demo: runs the built-in `demo` template end to end through a real daemon, in a
// scratch home, and shows where everything it wrote lives. Leaves no process behind, and
// removes the scratch home and workspace directory unless run with --keep
// (`npm run demo -- --keep`), which keeps them to look around with `atlas show`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_MAIN } from '../src/client/client.js';

const keep = process.argv.includes('--keep');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-demo-home-'));
const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'atlas-demo-ws-'));
const atlas = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI_MAIN, '--home', home, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  return r.status ?? 1;
};
const capture = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, '--home', home, ...args], { encoding: 'utf8' }).stdout;

console.log(`atlas demo: home ${home}, workspace directory ${workdir}\n`);
let code = 1;
try {
  if (atlas('daemon', 'start') !== 0) throw new Error('the daemon did not start');
  if (atlas('workspace', 'create', 'scratch', '--path', workdir) !== 0) throw new Error('could not create the workspace');
  code = atlas('start', 'demo', '-w', 'scratch', '-i', 'greeting=hello from the atlas demo', '--follow');
  const [task] = JSON.parse(capture('list', '--json', '--limit', '1')) as Array<{ id: string; status: string }>;
  if (task) {
    const dir = path.join(home, 'workspaces', 'scratch', 'tasks', task.id);
    console.log(`\ntask ${task.id}: ${task.status}`);
    console.log(`  checkpoint  ${path.join(dir, 'task.json')}`);
    console.log(`  log         ${path.join(dir, 'task.log')}`);
    console.log(`  artifacts   ${path.join(dir, 'artifacts')}: ${fs.readdirSync(path.join(dir, 'artifacts')).join(', ')}`);
    console.log(`  output      ${path.join(workdir, 'demo-output', 'greeting.txt')}`);
    const cli = path.relative(process.cwd(), CLI_MAIN) || CLI_MAIN;
    const onPath = 'put atlas on your PATH with `npm link` in this directory (or run `node ' + cli + '`)';
    if (keep) console.log(`\ntry: atlas --home ${home} show ${task.id}\n  (${onPath})`);
    else console.log(`\nto look at it with 'atlas show', run 'npm run demo -- --keep', which keeps the scratch home;\n${onPath}`);
  }
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  atlas('daemon', 'stop');
  if (keep) {
    console.log(`\nkept the scratch home ${home} and workspace ${workdir}; delete them with: rm -rf ${home} ${workdir}`);
  } else {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(workdir, { recursive: true, force: true });
    console.log(`removed the scratch home and workspace directory`);
  }
}
process.exit(code);
