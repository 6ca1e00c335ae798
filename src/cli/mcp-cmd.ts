// `atlas mcp`: the MCP server on stdio. The SDK is loaded only here (a dynamic import), so
// every other command starts without it.
import type { Argv } from 'yargs';
import type { GlobalArgs } from './connect.js';
import { fail } from './output.js';

export function registerMcpCommand(cli: Argv): Argv {
  return cli.command(
    'mcp',
    'serve the Model Context Protocol on stdio (for AI agents); talks to the daemon, starting it if needed',
    (y) => y,
    async (a) => {
      try {
        const { runMcpServer } = await import('../mcp/server.js');
        await runMcpServer(a as unknown as GlobalArgs);
      } catch (err) {
        fail(err);
      }
    },
  );
}
