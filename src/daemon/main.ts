// The daemon's own entry point, used by `atlas daemon start` and the service units: it loads
// only what the daemon needs (no CLI parser), to start fast and stay small.
// Usage: node dist/src/daemon/main.js --home DIR [--quiet] [--grace-ms N]
import { AlreadyRunningError, runDaemon } from './daemon.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const home = arg('--home') ?? process.env['ATLAS_HOME'];
if (!home) {
  process.stderr.write('atlas daemon: --home DIR is required\n');
  process.exit(2);
}
const quiet = process.argv.includes('--quiet');
const grace = Number(arg('--grace-ms') ?? 10_000);

try {
  const daemon = await runDaemon({ home, graceMs: Number.isFinite(grace) ? grace : 10_000, logToStderr: !quiet });
  await daemon.stopped;
  process.exit(0);
} catch (err) {
  if (err instanceof AlreadyRunningError) {
    process.stderr.write(`atlas: ${err.message}\n`);
    process.exit(0);
  }
  process.stderr.write(`atlas daemon: ${(err as Error).message}\n`);
  process.exit(1);
}
