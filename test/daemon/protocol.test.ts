// The control socket under bad input (DESIGN §5): garbage, invalid requests, unknown
// methods, ill-typed params and oversized lines get the right JSON-RPC errors on a raw
// connection, and the daemon keeps answering (on that connection and on new ones).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClientError } from '../../src/client/client.js';
import { MAX_LINE_BYTES, RPC } from '../../src/protocol/protocol.js';
import { VERSION } from '../../src/version.js';
import { TestHome, expectExit, homeProcesses } from '../helpers/daemon.js';
import { RawSocket } from '../helpers/raw-socket.js';

type Rpc = { jsonrpc?: string; id?: unknown; result?: unknown; error?: { code: number; message: string; data?: { code: string } } };

function req(id: number | string, method: string, params?: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }) + '\n';
}

function assertError(res: Rpc, code: number, id: unknown = null): void {
  assert.equal(res.jsonrpc, '2.0');
  assert.ok(res.error, `expected error ${code}, got ${JSON.stringify(res)}`);
  assert.equal(res.error.code, code, `expected error ${code}, got ${JSON.stringify(res.error)}`);
  assert.equal(typeof res.error.message, 'string');
  assert.doesNotMatch(res.error.message, /\n\s+at /, 'a stack trace crossed the socket');
  assert.deepEqual(res.id, id);
}

describe('the control socket under bad input', () => {
  let h: TestHome;
  let daemonPid = 0;
  let sock: RawSocket;

  before(async () => {
    h = new TestHome();
    daemonPid = await h.startDaemon();
    sock = await RawSocket.connect(h.socketPath);
  });
  after(async () => {
    sock?.close();
    await h.dispose();
  });

  async function pingWorks(s: RawSocket = sock): Promise<void> {
    const res = (await s.request(req('ping', 'daemon.ping'))) as Rpc;
    assert.equal(res.id, 'ping');
    assert.deepEqual(res.result, { version: VERSION, pid: daemonPid });
  }

  test('a ping answers with the version', async () => {
    await pingWorks();
  });

  test('garbage gets -32700 parse error', async () => {
    assertError((await sock.request('this is not json {\n')) as Rpc, RPC.PARSE_ERROR);
    assertError((await sock.request('{"jsonrpc":"2.0","id":1,"method":"daemon.ping"\n')) as Rpc, RPC.PARSE_ERROR);
    assertError((await sock.request(Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a]))) as Rpc, RPC.PARSE_ERROR);
    await pingWorks();
  });

  test('a request that is not a JSON-RPC 2.0 object gets -32600 invalid request', async () => {
    assertError((await sock.request('[1,2,3]\n')) as Rpc, RPC.INVALID_REQUEST);
    assertError((await sock.request('42\n')) as Rpc, RPC.INVALID_REQUEST);
    assertError((await sock.request('null\n')) as Rpc, RPC.INVALID_REQUEST);
    assertError((await sock.request(JSON.stringify({ jsonrpc: '1.0', id: 7, method: 'daemon.ping' }) + '\n')) as Rpc, RPC.INVALID_REQUEST, 7);
    assertError((await sock.request(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 42 }) + '\n')) as Rpc, RPC.INVALID_REQUEST, 8);
    assertError((await sock.request(JSON.stringify({ jsonrpc: '2.0', id: { x: 1 }, method: 'daemon.ping' }) + '\n')) as Rpc, RPC.INVALID_REQUEST);
    await pingWorks();
  });

  test('an unknown method gets -32601 with the request id', async () => {
    assertError((await sock.request(req(11, 'task.explode'))) as Rpc, RPC.METHOD_NOT_FOUND, 11);
    assertError((await sock.request(req('s', 'constructor'))) as Rpc, RPC.METHOD_NOT_FOUND, 's');
    assertError((await sock.request(req(12, '__proto__'))) as Rpc, RPC.METHOD_NOT_FOUND, 12);
    // A notification (no id) of an unknown method gets no answer: the next line is the ping's.
    await sock.write(JSON.stringify({ jsonrpc: '2.0', method: 'task.explode' }) + '\n');
    await pingWorks();
  });

  test('ill-typed params get -32602 invalid params', async () => {
    assertError((await sock.request(req(21, 'task.get', { id: 5 }))) as Rpc, RPC.INVALID_PARAMS, 21);
    assertError((await sock.request(req(22, 'task.get', {}))) as Rpc, RPC.INVALID_PARAMS, 22);
    assertError((await sock.request(req(23, 'task.list', { limit: 'ten' }))) as Rpc, RPC.INVALID_PARAMS, 23);
    assertError((await sock.request(req(24, 'task.list', { status: 'sleeping' }))) as Rpc, RPC.INVALID_PARAMS, 24);
    assertError((await sock.request(req(25, 'daemon.ping', { extra: true }))) as Rpc, RPC.INVALID_PARAMS, 25);
    assertError((await sock.request(req(26, 'task.start', { workspace: 'ws' }))) as Rpc, RPC.INVALID_PARAMS, 26);
    assertError((await sock.request(req(27, 'daemon.stop', { timeout_ms: -1 }))) as Rpc, RPC.INVALID_PARAMS, 27);
    assertError((await sock.request(req(28, 'workspace.create', 'ws'))) as Rpc, RPC.INVALID_PARAMS, 28);
    await pingWorks();
  });

  test('application errors: not found, invalid names (no path escapes)', async () => {
    assertError((await sock.request(req(31, 'task.get', { id: 'task-20000101-000000' }))) as Rpc, RPC.NOT_FOUND, 31);
    assertError((await sock.request(req(32, 'workspace.get', { name: '../../etc' }))) as Rpc, RPC.VALIDATION, 32);
    assertError((await sock.request(req(33, 'task.get', { id: '../../../etc/passwd' }))) as Rpc, RPC.VALIDATION, 33);
    assertError((await sock.request(req(34, 'template.get', { name: 'no-such-template' }))) as Rpc, RPC.NOT_FOUND, 34);
    await pingWorks();
  });

  test('a line over 1 MiB is refused with -32600, and the connection keeps working', async () => {
    // One write holding the whole oversized line and its newline.
    const big = req(41, 'task.get', { id: 'x'.repeat(MAX_LINE_BYTES + 1000) });
    assert.ok(Buffer.byteLength(big) > MAX_LINE_BYTES);
    assertError((await sock.request(big)) as Rpc, RPC.INVALID_REQUEST);
    await pingWorks();

    // The same in pieces: the daemon answers once the line passes the limit, then discards the
    // rest of the line up to its newline.
    const chunk = 'y'.repeat(256 * 1024);
    await sock.write('{"jsonrpc":"2.0","id":42,"method":"daemon.ping","params":{"pad":"');
    for (let i = 0; i < 6; i++) await sock.write(chunk);
    assertError((await sock.next()) as Rpc, RPC.INVALID_REQUEST);
    await sock.write('"}}\n');
    await pingWorks();
  });

  test('an empty line is ignored; several requests in one write are all answered in order', async () => {
    await sock.write('\n\n');
    await sock.write(req(51, 'daemon.ping') + req(52, 'daemon.status') + req(53, 'task.list', { limit: 1 }));
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = (await sock.next()) as Rpc;
      assert.equal(r.error, undefined, JSON.stringify(r));
      ids.push(r.id);
    }
    assert.deepEqual(ids.sort(), [51, 52, 53]);
  });

  test('after all that, the daemon is alive and serves new connections and the CLI', async () => {
    const fresh = await RawSocket.connect(h.socketPath);
    try {
      await pingWorks(fresh);
    } finally {
      fresh.close();
    }
    const c = await h.client();
    await assert.rejects(c.call('task.get', { id: 'task-20000101-000000' }), (e: unknown) => e instanceof ClientError && e.code === 'not_found' && e.rpcCode === RPC.NOT_FOUND);
    assert.deepEqual(await c.call('daemon.ping'), { version: VERSION, pid: daemonPid });
    c.close();
    expectExit(await h.cli(['daemon', 'status']), 0);
    assert.deepEqual(homeProcesses(h.home), [daemonPid]);
    sock.close();
    await h.stopDaemon();
  });
});
