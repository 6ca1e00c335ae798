// atlas doctor [--repair]: reports every problem in the home, and fixes what is safe.
import { withClient, type Cli } from './connect.js';
import { EXIT, c, fail, printJson } from './output.js';

export function registerDoctorCommand(cli: Cli): Cli {
  return cli.command(
    'doctor',
    'check the home for problems (corrupt checkpoints, leftovers, stale locks); --repair fixes them',
    (y) =>
      y
        .option('repair', { type: 'boolean', default: false, describe: 'fix what can be fixed safely' })
        .option('clear-quarantine', { type: 'boolean', default: false, describe: 'delete the unrecoverable tasks kept in quarantine/' }),
    async (args) => {
      try {
        const r = await withClient(args, (client) => client.call('doctor.run', { repair: args.repair, ...(args.clearQuarantine ? { clear_quarantine: true } : {}) }));
        if (args.json) printJson(r);
        else {
          if (r.quarantine_cleared) process.stdout.write(`cleared the quarantine: ${r.quarantine_cleared.removed.length} task(s) deleted${r.quarantine_cleared.removed.length ? ` (${r.quarantine_cleared.removed.join(', ')})` : ''}\n`);
          const rec = r.recovery_at_start;
          if (rec && (rec.repaired.length || rec.rerun.length || rec.killed_groups || rec.swept_temp_files)) {
            process.stdout.write(
              `at daemon start: ${rec.rerun.length} interrupted step(s) re-run, ${rec.killed_groups} leftover process group(s) killed, ${rec.swept_temp_files} temp file(s) swept, ${rec.repaired.length} task(s) repaired${rec.repaired.length ? ` (${rec.repaired.map((x) => `${x.id}: ${x.action}`).join(', ')})` : ''}\n`,
            );
          }
          for (const f of r.findings) {
            const sev = f.severity === 'error' ? c.red('error') : f.severity === 'warning' ? c.yellow('warning') : c.dim('info');
            const fix = f.fixed ? c.green(` [fixed: ${f.fix}]`) : f.fix ? c.dim(` [--repair: ${f.fix}]`) : '';
            process.stdout.write(`${sev} ${f.kind} ${f.target}\n    ${f.message}${fix}\n`);
          }
          process.stdout.write(`${r.tasks_checked} task(s) checked: ${r.findings.length === 0 ? c.green('no problems found') : r.ok ? c.green('nothing left to fix') : `${r.findings.filter((f) => !f.fixed && f.severity !== 'info').length} problem(s)${r.repair ? '' : "; run 'atlas doctor --repair'"}`}\n`);
        }
        if (!r.ok) process.exit(EXIT.TASK_FAILED);
      } catch (err) {
        fail(err);
      }
    },
  );
}
