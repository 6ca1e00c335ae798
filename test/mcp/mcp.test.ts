// `atlas mcp` driven by the SDK's own client over stdio (DESIGN §12): it lists the tools (with
// schemas and hints), starts a task, waits for it, reads its logs, approves a human step, and a
// bad argument or an unknown task comes back as isError with a message, not a crash.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI_PATH, TestHome, cliEnv } from '../helpers/daemon.js';

const REVIEW = `name: review
steps:
  - name: build
    type: shell
    run: echo built-it
  - name: check
    type: human
    prompt: Look at it
  - name: after
    type: shell
    run: echo after-approval
`;

type Result = { isError?: boolean; content: Array<{ type: string; text?: string }>; structuredContent?: Record<string, unknown> };

test('atlas mcp: tools over stdio with the SDK client: start, wait, logs, approve; bad arguments are isError', { timeout: 150_000 }, async () => {
  const h = new TestHome();
  h.writeTemplate('review', REVIEW);
  const ws = h.dir('ws');
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI_PATH, '--home', h.home, 'mcp'], env: cliEnv() as Record<string, string>, stderr: 'pipe' });
  const client = new Client({ name: 'atlas-test', version: '1.0.0' });
  try {
    await h.startDaemon();
    await h.ok(['workspace', 'create', 'w', '--path', ws]);
    await client.connect(transport);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      'atlas_memory_add', 'atlas_memory_list', 'atlas_task_approve', 'atlas_task_cancel', 'atlas_task_list', 'atlas_task_logs', 'atlas_task_reject', 'atlas_task_resume',
      'atlas_task_show', 'atlas_task_start', 'atlas_task_wait', 'atlas_template_list', 'atlas_workspace_list',
    ]);
    for (const t of tools) {
      assert.equal(t.inputSchema.type, 'object', `${t.name} has an input schema`);
      assert.ok(t.outputSchema, `${t.name} has an output schema`);
      assert.equal(typeof t.annotations?.readOnlyHint, 'boolean', `${t.name} says whether it only reads`);
    }
    assert.equal(tools.find((t) => t.name === 'atlas_task_cancel')!.annotations!.destructiveHint, true);
    assert.equal(tools.find((t) => t.name === 'atlas_task_list')!.annotations!.readOnlyHint, true);

    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as Result;
    const wsList = await call('atlas_workspace_list', {});
    assert.ok((wsList.structuredContent!['workspaces'] as Array<{ name: string }>).some((w) => w.name === 'w'));

    const added = await call('atlas_memory_add', { workspace: 'w', text: 'Tests run with npm test', kind: 'pattern' });
    assert.ok(!added.isError, added.content[0]?.text);
    const found = await call('atlas_memory_list', { workspace: 'w', query: 'npm' });
    assert.deepEqual((found.structuredContent!['entries'] as Array<{ text: string; kind: string }>).map((e) => [e.kind, e.text]), [['pattern', 'Tests run with npm test']]);
    assert.equal((await call('atlas_memory_list', { workspace: 'nope' })).isError, true);

    const started = await call('atlas_task_start', { template: 'review', workspace: 'w' });
    assert.ok(!started.isError, started.content[0]?.text);
    const id = (started.structuredContent!['task'] as { id: string }).id;
    const waited = await call('atlas_task_wait', { id, timeout_seconds: 30 });
    assert.equal(waited.structuredContent!['settled'], true);
    assert.equal((waited.structuredContent!['task'] as { status: string }).status, 'awaiting_approval');
    const logs = await call('atlas_task_logs', { id });
    assert.match(String(logs.structuredContent!['output']), /built-it/);

    const approved = await call('atlas_task_approve', { id });
    assert.ok(!approved.isError, approved.content[0]?.text);
    const done = await call('atlas_task_wait', { id, timeout_seconds: 30 });
    assert.equal((done.structuredContent!['task'] as { status: string }).status, 'completed');
    assert.match(String((await call('atlas_task_logs', { id, step: 'after' })).structuredContent!['output']), /after-approval/);

    // A wait that times out returns the task as it stands.
    const again = await call('atlas_task_start', { template: 'review', workspace: 'w' });
    const id2 = (again.structuredContent!['task'] as { id: string }).id;
    await call('atlas_task_wait', { id: id2, timeout_seconds: 30 });
    const short = await call('atlas_task_wait', { id: id2, timeout_seconds: 0 });
    assert.ok(!short.isError);
    assert.ok(typeof short.structuredContent!['settled'] === 'boolean');
    const canceled = await call('atlas_task_cancel', { id: id2 });
    assert.equal((canceled.structuredContent!['task'] as { status: string }).status, 'abandoned');

    // Failures are isError with a message; the server keeps serving.
    const unknown = await call('atlas_task_show', { id: 'task-20000101-000000' });
    assert.equal(unknown.isError, true);
    assert.match(unknown.content[0]!.text!, /no task task-20000101-000000/);
    const bad = await call('atlas_task_start', { template: 'review' });
    assert.equal(bad.isError, true, 'a missing argument is a tool error');
    assert.ok(bad.content[0]?.text);
    const badType = await call('atlas_task_wait', { id, timeout_seconds: 'soon' });
    assert.equal(badType.isError, true);
    const list = await call('atlas_task_list', {});
    assert.equal((list.structuredContent!['tasks'] as unknown[]).length, 2);
  } finally {
    await client.close().catch(() => undefined);
    await h.dispose();
  }
});
