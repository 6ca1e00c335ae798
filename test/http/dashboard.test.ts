// The dashboard end to end in headless Chromium against a real daemon: log in through the
// one-time URL, watch a running task's log grow live, approve a human step, reject with
// retry-from and see the step run again, cancel a long step and check with ps that its
// process tree is gone, and start a task from the form generated from its inputs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { TaskRecord } from '../../src/store/records.js';
import { TestHome, waitFor } from '../helpers/daemon.js';
import { browserMissing, launch, shoot, withScreenshot } from '../helpers/browser.js';
import { homeWithListener, request, type Login } from '../helpers/http.js';

const skip = browserMissing();
if (skip) process.stderr.write(`# ${skip}\n`);

const TEMPLATES: Record<string, string> = {
  ticker: `name: ticker
description: prints a numbered line every 0.3 s
steps:
  - name: tick
    type: shell
    run: i=1; while [ $i -le 12 ]; do echo "tick-$i"; i=$((i+1)); sleep 0.3; done
`,
  review: `name: review
description: make something, then ask a human
steps:
  - name: make
    type: shell
    run: echo "made attempt $ATLAS_ATTEMPT"
  - name: review
    type: human
    prompt: Look at what make made, then approve.
  - name: ship
    type: shell
    run: echo shipped
`,
  tree: `name: tree
description: a long step with a process tree
steps:
  - name: long
    type: shell
    run: sleep 120 & sleep 120 & echo started-tree; wait
`,
  greet: `name: greet
description: says hello to someone
inputs:
  who: { description: the name to greet, required: true }
  greeting: { description: how to greet, default: hello }
steps:
  - name: say
    type: shell
    run: echo "$ATLAS_INPUT_GREETING, $ATLAS_INPUT_WHO!"
`,
};

/** Live processes (not zombies) of a process group, from ps. */
function groupMembers(pgid: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,stat='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && Number(f[1]) === pgid && !f[2]!.startsWith('Z'))
    .map((f) => Number(f[0]));
}

describe('dashboard in a browser', { skip: skip ?? false }, () => {
  let home: TestHome;
  let base: string;
  let token: string;
  let context: BrowserContext;
  let page: Page;
  let shots: string;

  const api = async <T>(method: string, params: Record<string, unknown>): Promise<T> => {
    const r = await request(`${base}/api/${method}`, { method: 'POST', body: params, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `${method}: ${r.text}`);
    return r.json<T>();
  };
  const start = (template: string) => api<TaskRecord>('task.start', { template, workspace: 'ws' });
  const headerStatus = (status: string) => page.waitForSelector(`.task-head .badge.s-${status}`, { timeout: 20_000 });
  const openTask = async (id: string) => {
    await page.goto(`${base}/#/task/${id}`);
    await page.waitForSelector(`.task-head h1:has-text("${id}")`, { timeout: 20_000 });
  };

  before(async () => {
    ({ home, base, token } = await homeWithListener());
    for (const [name, text] of Object.entries(TEMPLATES)) home.writeTemplate(name, text);
    await home.createWorkspaces(['ws']);
    shots = path.join(home.root, 'screenshots');
    context = await launch(path.join(home.root, 'chromium-profile'));
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await context?.close().catch(() => undefined);
    if (process.env['ATLAS_KEEP_SCREENSHOTS'] && shots && fs.existsSync(shots)) fs.cpSync(shots, process.env['ATLAS_KEEP_SCREENSHOTS'], { recursive: true });
    await home?.dispose();
  });

  test('logs in through the one-time URL', async () => {
    await withScreenshot(page, shots, 'login', async () => {
      // Not logged in: the page says how, and the API refuses.
      await page.goto(`${base}/`);
      assert.match((await page.textContent('body')) ?? '', /atlas dashboard/);
      const l = await home.json<Login>(['dashboard']);
      await page.goto(l.login_url);
      assert.equal(new URL(page.url()).pathname, '/');
      await page.waitForSelector('h1:text("Tasks")', { timeout: 20_000 });
      const cookies = await context.cookies(base);
      assert.ok(cookies.some((c) => c.name === 'atlas_session' && c.httpOnly && c.sameSite === 'Strict'));
      // The same URL does not log in twice.
      const again = await request(l.login_url);
      assert.equal(again.status, 401);
    });
  });

  test("shows a running task's log lines as they are written", async () => {
    const t = await start('ticker');
    await withScreenshot(page, shots, 'live-log', async () => {
      await openTask(t.id);
      await page.waitForSelector('.log :text("tick-2")', { timeout: 20_000 });
      // Lines the step had not printed when the page opened arrive without a reload.
      const shown = (await page.textContent('.log')) ?? '';
      const last = Math.max(...[...shown.matchAll(/tick-(\d+)/g)].map((m) => Number(m[1])));
      assert.ok(last < 12, `the task was still running when the page opened (saw tick-${last})`);
      await page.waitForSelector(`.log :text("tick-${last + 2}")`, { timeout: 20_000 });
      await headerStatus('completed');
      await page.waitForSelector('.log :text("tick-12")', { timeout: 10_000 });
    });
  });

  test('approves a human step and the task completes', async () => {
    const t = await start('review');
    await withScreenshot(page, shots, 'approve', async () => {
      await openTask(t.id);
      await headerStatus('awaiting_approval');
      await page.waitForSelector('.prompt:has-text("Look at what make made")', { timeout: 10_000 });
      assert.equal(await page.isDisabled('button[name=resume]'), true, 'resume is not allowed while waiting');
      assert.equal(await page.isEnabled('button[name=cancel]'), true);
      await page.click('button[name=approve]');
      await headerStatus('completed');
      assert.equal(await page.isDisabled('button[name=approve]'), true);
      assert.equal(await page.isDisabled('button[name=cancel]'), true, 'a completed task cannot be canceled');
      const done = await home.getTask(t.id);
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.steps.map((s) => s.status), ['completed', 'completed', 'completed']);
    });
  });

  test('rejects with retry-from and the step runs again', async () => {
    const t = await start('review');
    await withScreenshot(page, shots, 'reject', async () => {
      await openTask(t.id);
      await headerStatus('awaiting_approval');
      await page.click('button[name=reject]');
      await page.fill('textarea[name=reason]', 'make it again, please');
      await page.selectOption('select[name=retry_from]', 'make');
      await page.click('.reject-form button[type=submit]');
      const again = await home.waitTask(t.id, 'make ran a second time and the review waits again', (x) => x.status === 'awaiting_approval' && x.steps[0]!.attempts === 2, 20_000);
      assert.equal(again.step_results.filter((r) => r.step_name === 'make').length, 2);
      // The page shows the second attempt of make and the rejected first review.
      await page.waitForSelector('[data-step="make"] .attempt:has-text("#2")', { timeout: 20_000 });
      await page.waitForSelector('[data-step="review"] .attempt .badge.s-rejected', { timeout: 20_000 });
      await headerStatus('awaiting_approval');
      await page.waitForSelector('.log :text("made attempt 2")', { timeout: 20_000 });
      if (process.env['ATLAS_DOC_SCREENSHOTS']) await shoot(page, process.env['ATLAS_DOC_SCREENSHOTS'], 'dashboard-task');
    });
  });

  test("cancels a long step and its process tree is gone (ps)", async () => {
    const t = await start('tree');
    const running = await home.waitStepProcess(t.id);
    const pgid = running.steps[0]!.process!.pgid;
    await waitFor('the step to have started its two sleeps', () => groupMembers(pgid).length >= 3, 20_000);
    await withScreenshot(page, shots, 'cancel', async () => {
      await openTask(t.id);
      await page.waitForSelector('.log :text("started-tree")', { timeout: 20_000 });
      assert.equal(await page.isDisabled('button[name=approve]'), true);
      await page.click('button[name=cancel]');
      await headerStatus('abandoned');
    });
    await waitFor(`no process of group ${pgid} left (ps)`, () => groupMembers(pgid).length === 0, 15_000);
    assert.equal((await home.getTask(t.id)).status, 'abandoned');
  });

  test('starts a task from the form made from the template inputs', async () => {
    await withScreenshot(page, shots, 'start-form', async () => {
      await page.goto(`${base}/#/start`);
      await page.waitForSelector('select[name=template] option[value=greet]', { state: 'attached', timeout: 20_000 });
      await page.selectOption('select[name=template]', 'greet');
      await page.waitForSelector('input[name=input-who]', { timeout: 10_000 });
      assert.equal(await page.inputValue('input[name=input-greeting]'), 'hello', 'defaults are filled in');
      assert.equal(await page.getAttribute('input[name=input-who]', 'required'), '');
      await page.selectOption('select[name=workspace]', 'ws');
      await page.fill('input[name=input-who]', 'Ada <b>Lovelace</b>');
      await page.fill('input[name=description]', 'from the browser');
      await page.click('form.start-form button[type=submit]');
      await page.waitForURL(/#\/task\/task-/, { timeout: 20_000 });
      const id = decodeURIComponent(page.url().split('#/task/')[1]!);
      await headerStatus('completed');
      await page.waitForSelector('.log :text("hello, Ada <b>Lovelace</b>!")', { timeout: 20_000 });
      const t = await home.getTask(id);
      assert.equal(t.template, 'greet');
      assert.equal(t.description, 'from the browser');
      assert.deepEqual(t.inputs, { who: 'Ada <b>Lovelace</b>', greeting: 'hello' });
    });
  });

  test('the daemon page shows the daemon and recent events; pages fit a phone screen', async () => {
    await withScreenshot(page, shots, 'daemon', async () => {
      await page.goto(`${base}/#/daemon`);
      await page.waitForSelector('.facts dd:has-text("slots")', { timeout: 20_000 });
      await page.waitForSelector('.recent li code:has-text("task.finished")', { timeout: 20_000 });
      const t = await start('review');
      // A new event arrives live.
      await page.waitForSelector(`.recent li:has(a:text("${t.id}")) code:has-text("task.awaiting_approval")`, { timeout: 20_000 });
      await page.setViewportSize({ width: 390, height: 844 });
      for (const hash of ['#/', `#/task/${t.id}`, '#/start', '#/daemon']) {
        await page.goto(`${base}/${hash}`);
        await page.waitForSelector('main h1', { timeout: 20_000 });
        const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number;
        assert.ok(overflow <= 0, `${hash} is wider than a phone screen by ${overflow}px`);
        await shoot(page, shots, `phone-${hash.replace(/\W+/g, '-')}`);
      }
      await page.setViewportSize({ width: 1280, height: 860 });
      await api('task.cancel', { id: t.id });
    });
  });
});
