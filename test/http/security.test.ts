// The HTTP listener's security rules (DESIGN §11), each checked at the HTTP level against a
// real daemon: token or session required, Host and Origin checked (DNS rebinding), CSRF on
// every state change, a strict CSP with no inline script, artifacts never served as HTML,
// and a non-loopback address refused unless allowed on purpose.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestHome, type CliResult } from '../helpers/daemon.js';
import { homeWithListener, login, openSse, request, type SseEvent } from '../helpers/http.js';

describe('HTTP listener security', () => {
  let home: TestHome;
  let base: string;
  let token: string;
  let host: string;
  const bearer = () => ({ authorization: `Bearer ${token}` });

  before(async () => {
    ({ home, base, token } = await homeWithListener({ templates: ['quick', 'review'] }));
    host = new URL(base).host;
    await home.createWorkspaces(['w']);
  });
  after(async () => {
    await home?.dispose();
  });

  test('the token file is made at first use, mode 0600', () => {
    const st = fs.statSync(path.join(home.home, 'http.token'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.ok(token.length >= 32);
  });

  test('/healthz needs nothing; every other path needs the token or a session', async () => {
    assert.equal((await request(`${base}/healthz`)).status, 200);
    for (const p of ['/readyz', '/metrics', '/api/task.list', '/api/daemon.status', '/api/stream/tasks', '/app.js', '/api/artifact?id=x&name=y']) {
      const r = await request(base + p);
      assert.equal(r.status, 401, `${p} without credentials: ${r.status}`);
    }
    // The page itself says how to log in (and leaks nothing).
    const page = await request(`${base}/`);
    assert.equal(page.status, 401);
    assert.match(page.text, /atlas dashboard/);
    assert.equal((await request(`${base}/api/task.list`, { headers: { authorization: 'Bearer wrong-token-wrong-token-wrong-token' } })).status, 401);
    assert.equal((await request(`${base}/api/task.list`, { headers: { authorization: `Bearer ${token}x` } })).status, 401);
    const ok = await request(`${base}/api/task.list`, { headers: bearer() });
    assert.equal(ok.status, 200, ok.text);
    assert.ok(Array.isArray(ok.json()));
    // Schedules are read with GET too (list, get); none exist here.
    const schedules = await request(`${base}/api/schedule.list`, { headers: bearer() });
    assert.equal(schedules.status, 200, schedules.text);
    assert.deepEqual(schedules.json(), []);
    // A workspace's memory is read with GET too (and an unknown workspace is a 404).
    const memory = await request(`${base}/api/memory.list?workspace=nope`, { headers: bearer() });
    assert.equal(memory.status, 404, memory.text);
    assert.match(memory.text, /no workspace nope/);
    assert.equal((await request(`${base}/api/schedule.get?name=nope`, { headers: bearer() })).status, 404);
  });

  test('a Host that does not name the listener is refused, even with the token (DNS rebinding)', async () => {
    const port = new URL(base).port;
    for (const h of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${Number(port) + 1}`, `localhost.evil.example:${port}`]) {
      const r = await request(`${base}/api/task.list`, { headers: { ...bearer(), host: h } });
      assert.equal(r.status, 421, `Host ${h}: ${r.status}`);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'bad_host');
    }
    // /healthz too: a rebinding page learns nothing.
    assert.equal((await request(`${base}/healthz`, { headers: { host: `evil.example:${port}` } })).status, 421);
    // The same listener by another loopback name is fine.
    assert.equal((await request(`${base}/api/task.list`, { headers: { ...bearer(), host: `localhost:${port}` } })).status, 200);
  });

  test('a foreign Origin is refused', async () => {
    for (const origin of ['http://evil.example', `https://${host}`, 'null', `http://${host}.evil.example`]) {
      const r = await request(`${base}/api/task.list`, { headers: { ...bearer(), origin } });
      assert.equal(r.status, 403, `Origin ${origin}: ${r.status}`);
    }
    assert.equal((await request(`${base}/api/task.list`, { headers: { ...bearer(), origin: `http://${host}` } })).status, 200);
    assert.equal((await request(`${base}/api/task.list`, { headers: { ...bearer(), 'sec-fetch-site': 'cross-site' } })).status, 403);
  });

  test('the one-time login URL sets a session cookie once; a forged cookie is refused', async () => {
    const l = await home.json<{ login_url: string }>(['dashboard']);
    const first = await request(l.login_url);
    assert.equal(first.status, 303);
    assert.equal(first.headers.location, '/');
    const cookie = first.headers['set-cookie']![0]!.split(';')[0]!;
    assert.equal((await request(`${base}/api/task.list`, { headers: { cookie } })).status, 200);
    // Used once: the same URL no longer logs in.
    const again = await request(l.login_url);
    assert.equal(again.status, 401);
    assert.equal(again.headers['set-cookie'], undefined);
    assert.equal((await request(`${base}/login?code=made-up`)).status, 401);
    // A tampered cookie (other nonce, same mac) is not a session.
    const [name, value] = cookie.split('=') as [string, string];
    const parts = value.split('.');
    parts[2] = 'AAAAAAAAAAAAAAAAAAAAAA';
    assert.equal((await request(`${base}/api/task.list`, { headers: { cookie: `${name}=${parts.join('.')}` } })).status, 401);
    assert.equal((await request(`${base}/api/task.list`, { headers: { cookie: `${name}=v1.1.2.3` } })).status, 401);
  });

  test('state changes with the cookie need the CSRF token and our Origin; GET never changes state', async () => {
    const s = await login(home);
    const start = { template: 'quick', workspace: 'w' };
    const origin = `http://${host}`;
    const noCsrf = await request(`${base}/api/task.start`, { method: 'POST', body: start, headers: { cookie: s.cookie, origin } });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.json<{ error: { code: string } }>().error.code, 'csrf');
    const other = await login(home);
    assert.notEqual(other.csrf, s.csrf);
    const wrongCsrf = await request(`${base}/api/task.start`, { method: 'POST', body: start, headers: { cookie: s.cookie, origin, 'x-atlas-csrf': other.csrf } });
    assert.equal(wrongCsrf.status, 403, 'another session’s CSRF token must not do');
    const noOrigin = await request(`${base}/api/task.start`, { method: 'POST', body: start, headers: { cookie: s.cookie, 'x-atlas-csrf': s.csrf } });
    assert.equal(noOrigin.status, 403);
    assert.equal((await home.listTasks()).length, 0, 'no refused request may start a task');
    const ok = await request(`${base}/api/task.start`, { method: 'POST', body: start, headers: { cookie: s.cookie, origin, 'x-atlas-csrf': s.csrf } });
    assert.equal(ok.status, 200, ok.text);
    const task = ok.json<{ id: string; template: string }>();
    assert.equal(task.template, 'quick');
    await home.waitSettled(task.id);
    // GET of a state-changing method is refused, with the cookie or the token.
    assert.equal((await request(`${base}/api/task.start?template=quick&workspace=w`, { headers: { cookie: s.cookie } })).status, 405);
    assert.equal((await request(`${base}/api/task.cancel?id=${task.id}`, { headers: bearer() })).status, 405);
    // A bearer request may change state without a CSRF token (no browser sends that header by itself).
    const viaToken = await request(`${base}/api/task.start`, { method: 'POST', body: start, headers: bearer() });
    assert.equal(viaToken.status, 200, viaToken.text);
    await home.waitSettled(viaToken.json<{ id: string }>().id);
    // API errors are JSON with the stable code.
    const missing = await request(`${base}/api/task.get?id=task-20000101-000000`, { headers: bearer() });
    assert.equal(missing.status, 404);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, 'not_found');
    const bad = await request(`${base}/api/task.start`, { method: 'POST', body: '{not json', headers: bearer() });
    assert.equal(bad.status, 400);
  });

  test('every response carries a strict CSP; the page loads no inline script and nothing from another origin', async () => {
    const s = await login(home);
    for (const p of ['/', '/api/task.list', '/healthz', '/app.js']) {
      const r = await request(base + p, { headers: { cookie: s.cookie } });
      const csp = String(r.headers['content-security-policy'] ?? '');
      assert.match(csp, /default-src 'none'/, `${p}: ${csp}`);
      assert.match(csp, /script-src 'self'(;|$)/, `${p}: ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|https?:/, `${p}: ${csp}`);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    const page = await request(`${base}/`, { headers: { cookie: s.cookie } });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const scripts = [...page.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    assert.ok(scripts.length >= 1, 'the page loads its script');
    for (const [, attrs, body] of scripts) {
      assert.match(attrs!, /src="\/[^/]/, `script without a same-origin src: ${attrs}`);
      assert.equal(body!.trim(), '', 'no inline script');
    }
    assert.doesNotMatch(page.text, /(src|href)="(https?:)?\/\//i, 'no asset from another origin');
    assert.doesNotMatch(page.text, /\son[a-z]+=/i, 'no inline event handlers');
    const css = await request(`${base}/app.css`, { headers: { cookie: s.cookie } });
    assert.equal(css.status, 200);
    assert.doesNotMatch(css.text, /@import|url\((['"])?(https?:)?\/\//i, 'no stylesheet or font from elsewhere');
    const js = await request(`${base}/app.js`, { headers: { cookie: s.cookie } });
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
  });

  test('artifacts are served as text/plain or as downloads, never as HTML', async () => {
    const evil = home.dir('evil');
    await (await home.client()).call('workspace.create', { name: 'evil', path: evil });
    home.writeTemplate('html', `name: html\nsteps:\n  - name: page\n    type: shell\n    run: printf '<html><script>alert(1)</script></html>'\n`);
    const started = await request(`${base}/api/task.start`, { method: 'POST', body: { template: 'html', workspace: 'evil' }, headers: bearer() });
    assert.equal(started.status, 200, started.text);
    const id = started.json<{ id: string }>().id;
    await home.waitSettled(id);
    const list = await request(`${base}/api/task.artifacts?id=${id}`, { headers: bearer() });
    const names = list.json<Array<{ name: string }>>().map((a) => a.name);
    const out = names.find((n) => n.startsWith('page.output'));
    assert.ok(out, `an output artifact: ${names.join(', ')}`);
    const view = await request(`${base}/api/artifact?id=${id}&name=${out}`, { headers: bearer() });
    assert.equal(view.status, 200);
    assert.match(view.text, /<script>alert/);
    assert.match(String(view.headers['content-type']), /^text\/plain; charset=utf-8$/);
    assert.equal(view.headers['x-content-type-options'], 'nosniff');
    assert.match(String(view.headers['content-security-policy']), /^sandbox/);
    const dl = await request(`${base}/api/artifact?id=${id}&name=${out}&download=1`, { headers: bearer() });
    assert.equal(dl.status, 200);
    assert.equal(dl.headers['content-type'], 'application/octet-stream');
    assert.match(String(dl.headers['content-disposition']), /^attachment; filename="page\.output\.1\.log"$/);
    assert.equal((await request(`${base}/api/artifact?id=${id}&name=..%2Ftask.json`, { headers: bearer() })).status, 400);
  });
});

describe('the live task feed', () => {
  test('streams changes with the event seq as id, and resumes from Last-Event-ID with exactly what was missed', async () => {
    const { home, base, token } = await homeWithListener({ templates: ['quick'] });
    try {
      await home.createWorkspaces(['w']);
      const auth = { authorization: `Bearer ${token}` };
      const start = async () => (await request(`${base}/api/task.start`, { method: 'POST', body: { template: 'quick', workspace: 'w' }, headers: auth })).json<{ id: string }>().id;
      const done = (id: string) => (ev: SseEvent[]) => ev.some((e) => e.event === 'task' && (e.data as { task: { id: string; status: string } }).task.id === id && (e.data as { task: { status: string } }).task.status === 'completed');
      const first = await openSse(`${base}/api/stream/tasks`, auth);
      assert.equal(first.status, 200);
      await first.until('a snapshot', (ev) => ev.some((e) => e.event === 'snapshot'));
      const snapId = Number(first.events[0]!.id);
      assert.ok(Number.isInteger(snapId), `the snapshot's id is a seq: ${first.events[0]!.id}`);
      const a = await start();
      await first.until(`task ${a} completed`, done(a));
      const ids = first.events.slice(1).map((e) => Number(e.id));
      assert.ok(ids.every((n, i) => n > snapId && (i === 0 || n > ids[i - 1]!)), `ids grow past the snapshot: ${ids.join(',')}`);
      const lastId = first.events.at(-1)!.id!;
      first.close();
      // Missed while away: task b, from start to finish.
      const b = await start();
      await home.waitSettled(b);
      const resumed = await openSse(`${base}/api/stream/tasks`, { ...auth, 'last-event-id': lastId });
      await resumed.until(`the missed task ${b}`, done(b));
      assert.ok(!resumed.events.some((e) => e.event === 'snapshot'), 'a resume within the journal needs no snapshot');
      assert.ok(!resumed.events.some((e) => (e.data as { task: { id: string } }).task.id === a), 'nothing from before Last-Event-ID again');
      assert.ok(resumed.events.every((e) => Number(e.id) > Number(lastId)));
      resumed.close();
      // An id from elsewhere (another home, the future) gets a fresh snapshot.
      const stranger = await openSse(`${base}/api/stream/tasks`, { ...auth, 'last-event-id': '999999999' });
      await stranger.until('a snapshot', (ev) => ev.some((e) => e.event === 'snapshot'));
      const snap = stranger.events[0]!.data as { tasks: Array<{ id: string }>; counts: Record<string, number> };
      assert.deepEqual(new Set(snap.tasks.map((t) => t.id)), new Set([a, b]));
      assert.equal(snap.counts['completed'], 2);
      stranger.close();
    } finally {
      await home.dispose();
    }
  });
});

describe('HTTP listen address', () => {
  test('a non-loopback address is refused unless http.allow_remote is true', async () => {
    const home = new TestHome({});
    try {
      fs.mkdirSync(home.home, { recursive: true });
      fs.writeFileSync(path.join(home.home, 'config.yaml'), 'http:\n  listen: "0.0.0.0:0"\n');
      const r: CliResult = await home.cli(['daemon', 'start']);
      assert.notEqual(r.code, 0, 'the daemon must not start listening on every interface');
      assert.match(r.stderr, /allow_remote/);
      // `atlas dashboard --listen` obeys the same rule.
      fs.writeFileSync(path.join(home.home, 'config.yaml'), '');
      await home.startDaemon();
      const d = await home.cli(['dashboard', '--listen', '0.0.0.0:0']);
      assert.equal(d.code, 2, `${d.stdout}${d.stderr}`);
      assert.match(d.stderr, /allow_remote/);
      await home.stopDaemon();
      fs.writeFileSync(path.join(home.home, 'config.yaml'), 'http:\n  listen: "0.0.0.0:0"\n  allow_remote: true\n');
      await home.startDaemon();
      const l = await home.json<{ url: string }>(['dashboard']);
      const token = fs.readFileSync(path.join(home.home, 'http.token'), 'utf8').trim();
      const port = new URL(l.url).port;
      assert.equal((await request(`http://127.0.0.1:${port}/api/daemon.ping`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.equal((await request(`http://127.0.0.1:${port}/api/daemon.ping`, { headers: { authorization: `Bearer ${token}`, host: `evil.example:${port}` } })).status, 421);
      await home.stopDaemon();
    } finally {
      await home.dispose();
    }
  });
});
