// atlas daemon status: apart from the other daemon commands (daemon-cmd.ts), so the fast
// path (fast.ts) runs it without loading yargs or the template schema.
import { AtlasClient, isPermissionDenied } from '../client/client.js';
import { AtlasError } from '../errors.js';
import { homeOf, type GlobalArgs } from './connect.js';
import { EXIT, duration, info, printJson, table } from './output.js';
import { RUNNING_HEADERS, runningRows } from './ps-cmd.js';

export async function daemonStatus(args: GlobalArgs): Promise<void> {
  const home = homeOf(args);
  let client: AtlasClient;
  try {
    client = await AtlasClient.connect(home);
  } catch (err) {
    if (err instanceof AtlasError && err.code === 'daemon_unreachable' && !isPermissionDenied(err)) {
      if (args.json) printJson({ running: false, home });
      else info(`atlas: the daemon is not running for ${home}; start it with 'atlas daemon start'`);
      process.exit(EXIT.UNREACHABLE);
    }
    throw err;
  }
  try {
    const s = await client.call('daemon.status');
    if (args.json) {
      // `running: true` says the daemon runs (as when it does not: false); its running tasks are `running_list`.
      const { running: list, ...rest } = s;
      return printJson({ running: true, ...rest, running_list: list });
    }
    const counts = Object.entries(s.tasks_by_status).filter(([, n]) => n > 0);
    process.stdout.write(
      [
        `atlas ${s.version}: ${s.state}, pid ${s.pid}, up ${duration(s.uptime_ms)}`,
        `home     ${s.home}`,
        `socket   ${s.socket}`,
        `memory   ${(s.memory.rss_bytes / 1048576).toFixed(1)} MB resident`,
        `running  ${s.running_tasks} of ${s.max_concurrent_tasks} slots, ${s.queue_depth} queued`,
        `tasks    ${s.tasks_total}`,
        counts.length ? table(['STATUS', 'TASKS'], counts.map(([k, n]) => [k, String(n)])) : '',
        s.running?.length ? `\nrunning now\n${table(RUNNING_HEADERS, runningRows(s.running))}` : '',
        s.store === 'postgres' ? `\nstore    postgres ${s.store_server ?? ''} (schema ${s.store_schema ?? 'atlas'}), this daemon ${s.daemon_id ?? '?'}` : '',
        s.daemons?.length
          ? table(
              ['DAEMON', 'HOST', 'PID', 'HEARTBEAT', 'RUNNING'],
              s.daemons.map((d) => [d.id, d.host, String(d.pid), d.stopped ? 'stopped' : `${duration(d.heartbeat_age_ms)} ago`, String(d.running)]),
            )
          : '',
      ]
        .filter(Boolean)
        .join('\n') + '\n',
    );
  } finally {
    client.close();
  }
}
