// `atlas mcp`: the MCP server on stdio. The SDK is loaded only here (a dynamic import), so
// every other command starts without it.
import type { Cli } from './connect.js';
import { fail } from './output.js';

export function registerMcpCommand(cli: Cli): Cli {
  return cli.command(
    'mcp',
    'serve the Model Context Protocol on stdio (for AI agents); talks to the daemon, starting it if needed',
    (y) => y,
    async (args) => {
      try {
        const { runMcpServer } = await import('../mcp/server.js');
        await runMcpServer(args);
      } catch (err) {
        fail(err);
      }
    },
  );
}
