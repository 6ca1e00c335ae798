// `atlas mcp`: a Model Context Protocol server on stdio (DESIGN §12), built on the official
// SDK. It is a client of the daemon like the CLI: every tool is one or two socket calls
// (the daemon is started if needed). stdout carries only the protocol; anything else goes to
// stderr. Every tool has an input schema, returns structured content (and the same as text),
// answers failures with isError and the daemon's message, and says whether it only reads
// (readOnlyHint) or ends something for good (destructiveHint). Loaded only by `atlas mcp`,
// so the SDK never slows the CLI's other commands.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { AtlasClient } from '../client/client.js';
import { connect, type GlobalArgs } from '../cli/connect.js';
import { summarize, TASK_STATUSES, type TaskRecord } from '../store/records.js';
import { VERSION } from '../version.js';

const id = z.string().min(1).max(200).describe('a task id, such as task-20261202-101500');
const anyObject = z.object({}).passthrough();

export async function runMcpServer(args: GlobalArgs): Promise<void> {
  let client: AtlasClient | undefined;
  const getClient = async (): Promise<AtlasClient> => {
    if (!client) {
      const c = await connect(args, { onClose: () => client === c && (client = undefined) });
      client = c;
    }
    return client;
  };

  const ok = (structured: Record<string, unknown>, text?: string): CallToolResult => ({
    content: [{ type: 'text', text: text ?? JSON.stringify(structured, null, 2) }],
    structuredContent: structured,
  });
  const guard =
    <A>(fn: (a: A, c: AtlasClient) => Promise<CallToolResult>) =>
    async (a: A): Promise<CallToolResult> => {
      try {
        return await fn(a, await getClient());
      } catch (err) {
        const code = (err as { code?: string }).code;
        return { isError: true, content: [{ type: 'text', text: `${code ? `${code}: ` : ''}${(err as Error).message}` }] };
      }
    };

  const server = new McpServer({ name: 'atlas', version: VERSION }, { instructions: 'atlas runs tasks (templates of steps) in workspaces, durably. Start a task, wait for it, read its logs, and approve or reject human steps.' });
  const read = { readOnlyHint: true, destructiveHint: false, openWorldHint: false };
  const write = { readOnlyHint: false, destructiveHint: false, openWorldHint: false };

  server.registerTool(
    'atlas_task_start',
    {
      title: 'Start a task',
      description: 'Starts a task from a template (atlas_template_list) in a workspace (atlas_workspace_list). Returns the new task; it runs in the background.',
      inputSchema: {
        template: z.string().min(1).max(200).describe('template name'),
        workspace: z.string().min(1).max(200).describe('workspace name'),
        inputs: z.record(z.string(), z.string()).optional().describe('template inputs, name -> value'),
        description: z.string().max(10_000).optional(),
        priority: z.number().int().optional().describe('higher runs first (default 0)'),
      },
      outputSchema: { task: anyObject },
      annotations: { ...write, idempotentHint: false },
    },
    guard(async (a, c) => {
      const task = await c.call('task.start', {
        template: a.template,
        workspace: a.workspace,
        ...(a.inputs ? { inputs: a.inputs } : {}),
        ...(a.description !== undefined ? { description: a.description } : {}),
        ...(a.priority !== undefined ? { priority: a.priority } : {}),
      });
      return ok({ task }, `started ${task.id} (${task.template} in ${task.workspace}): ${task.status}`);
    }),
  );

  server.registerTool(
    'atlas_task_list',
    {
      title: 'List tasks',
      description: 'Task summaries, newest first.',
      inputSchema: {
        workspace: z.string().min(1).max(200).optional(),
        status: z.enum(TASK_STATUSES).optional(),
        template: z.string().min(1).max(200).optional(),
        limit: z.number().int().min(1).max(1000).optional().describe('default 50'),
      },
      outputSchema: { tasks: z.array(anyObject) },
      annotations: read,
    },
    guard(async (a, c) => {
      const tasks = await c.call('task.list', { limit: a.limit ?? 50, ...(a.workspace ? { workspace: a.workspace } : {}), ...(a.status ? { status: a.status } : {}), ...(a.template ? { template: a.template } : {}) });
      return ok({ tasks });
    }),
  );

  server.registerTool(
    'atlas_task_show',
    { title: 'Show a task', description: 'The whole task: steps, attempts, results, transitions.', inputSchema: { id }, outputSchema: { task: anyObject }, annotations: read },
    guard(async (a, c) => ok({ task: await c.call('task.get', { id: a.id }) })),
  );

  server.registerTool(
    'atlas_task_logs',
    {
      title: 'Read a task log',
      description: "The task's log records (lifecycle events and step output), the last `tail` of them.",
      inputSchema: { id, step: z.string().min(1).max(200).optional().describe('only this step'), tail: z.number().int().min(1).max(5000).optional().describe('default 200') },
      outputSchema: { id: z.string(), records: z.array(anyObject), output: z.string() },
      annotations: read,
    },
    guard(async (a, c) => {
      const r = await c.call('task.logs', { id: a.id, tail: a.tail ?? 200, ...(a.step ? { step: a.step } : {}) });
      const output = r.records
        .filter((x) => x['event'] === 'output')
        .map((x) => String(x['text'] ?? ''))
        .join('');
      return ok({ id: r.id, records: r.records, output }, output || JSON.stringify(r.records, null, 2));
    }),
  );

  server.registerTool(
    'atlas_task_wait',
    {
      title: 'Wait for a task',
      description: 'Waits until the task stops moving (completed, failed, awaiting approval...) or the timeout passes, and returns the task as it then stands (settled says which).',
      inputSchema: { id, timeout_seconds: z.number().min(0).max(3600).optional().describe('default 60') },
      outputSchema: { task: anyObject, settled: z.boolean() },
      annotations: read,
    },
    guard(async (a, c) => {
      const timeoutMs = (a.timeout_seconds ?? 60) * 1000;
      // Its own connection: closing it at the timeout ends the daemon's wait.
      const waiter = await connect(args);
      let timer: NodeJS.Timeout | undefined;
      try {
        const settled = await Promise.race([
          waiter.call('task.wait', { id: a.id }).then((t) => ({ t })),
          new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs))),
        ]);
        const task: TaskRecord = settled?.t ?? (await c.call('task.get', { id: a.id }));
        const s = summarize(task);
        return ok({ task, settled: settled !== undefined }, `${task.id} is ${task.status}${settled ? '' : ` (still moving after ${a.timeout_seconds ?? 60}s)`}; step ${s.current_step_name ?? '-'}`);
      } finally {
        clearTimeout(timer);
        waiter.close();
      }
    }),
  );

  for (const [name, method, title, description, destructive] of [
    ['atlas_task_approve', 'task.approve', 'Approve a human step', 'Approves the human step the task waits on; the task goes on.', false],
    ['atlas_task_resume', 'task.resume', 'Resume a task', 'Runs a failed or interrupted step again as a new attempt.', false],
    ['atlas_task_cancel', 'task.cancel', 'Cancel a task', "Stops the task for good (kills its running step's processes); it ends abandoned.", true],
  ] as const) {
    server.registerTool(
      name,
      { title, description, inputSchema: { id }, outputSchema: { task: anyObject }, annotations: { ...write, destructiveHint: destructive, idempotentHint: false } },
      guard(async (a, c) => {
        const task = await c.call(method, { id: a.id });
        return ok({ task }, `${task.id} is now ${task.status}`);
      }),
    );
  }

  server.registerTool(
    'atlas_task_reject',
    {
      title: 'Reject a human step',
      description: 'Rejects the human step the task waits on: the task ends rejected, or with retry_from runs again from that step (the reason is given to later steps).',
      inputSchema: { id, reason: z.string().min(1).max(10_000), retry_from: z.string().min(1).max(200).optional().describe('a step name to run again from') },
      outputSchema: { task: anyObject },
      annotations: { ...write, destructiveHint: true, idempotentHint: false },
    },
    guard(async (a, c) => {
      const task = await c.call('task.reject', { id: a.id, reason: a.reason, ...(a.retry_from ? { retry_from: a.retry_from } : {}) });
      return ok({ task }, `${task.id} is now ${task.status}`);
    }),
  );

  server.registerTool(
    'atlas_template_list',
    { title: 'List templates', description: 'The templates tasks can be started from, with their inputs and steps.', inputSchema: {}, outputSchema: { templates: z.array(anyObject) }, annotations: read },
    guard(async (_a, c) => ok({ templates: await c.call('template.list', {}) })),
  );

  server.registerTool(
    'atlas_workspace_list',
    { title: 'List workspaces', description: 'The workspaces tasks can run in.', inputSchema: {}, outputSchema: { workspaces: z.array(anyObject) }, annotations: read },
    guard(async (_a, c) => ok({ workspaces: await c.call('workspace.list', {}) })),
  );

  const workspace = z.string().min(1).max(200).describe('workspace name');
  server.registerTool(
    'atlas_memory_add',
    {
      title: 'Remember something for a workspace',
      description: "Adds an entry to a workspace's memory, which the ai steps of its tasks are given (newest first).",
      inputSchema: { workspace, text: z.string().min(1).max(8192).describe('what to remember'), kind: z.enum(['decision', 'note', 'pattern']).optional().describe('default note') },
      outputSchema: { entry: anyObject },
      annotations: { ...write, idempotentHint: false },
    },
    guard(async (a, c) => {
      const entry = await c.call('memory.add', { workspace: a.workspace, text: a.text, ...(a.kind ? { kind: a.kind } : {}) });
      return ok({ entry }, `added memory entry #${entry.id} to workspace ${entry.workspace}`);
    }),
  );

  server.registerTool(
    'atlas_memory_list',
    {
      title: "A workspace's memory",
      description: "The workspace's memory entries, oldest first; with query, only those holding every word of it.",
      inputSchema: { workspace, query: z.string().min(1).max(1000).optional() },
      outputSchema: { entries: z.array(anyObject) },
      annotations: read,
    },
    guard(async (a, c) => ok({ entries: a.query ? await c.call('memory.search', { workspace: a.workspace, query: a.query }) : await c.call('memory.list', { workspace: a.workspace }) })),
  );

  const transport = new StdioServerTransport();
  await server.connect(transport);
  await new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
  });
  client?.close();
  await server.close().catch(() => undefined);
}
