#!/usr/bin/env node
// The atlas entry point. `atlas [--home DIR] __complete -- WORD...` (what the shell completion
// scripts call on each Tab) goes straight to the small completer; everything else loads the
// full CLI (app.ts), except the plain forms of the most used commands (fast.ts).
const argv = process.argv.slice(2);
const at = argv.indexOf('__complete');
const lead = at >= 0 ? argv.slice(0, at) : [];
const onlyHome = lead.every((w, i) => w === '--home' || w.startsWith('--home=') || lead[i - 1] === '--home');
if (at >= 0 && onlyHome) {
  const { complete } = await import('./complete.js');
  const rest = argv.slice(at + 1);
  const out = await complete([...lead, ...(rest[0] === '--' ? rest.slice(1) : rest)]);
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
} else {
  // list, show, daemon status and start in their plain forms skip yargs (fast.ts).
  const { fastCommand } = await import('./fast.js');
  const fast = fastCommand(argv);
  if (fast) await fast();
  else {
    const { runCli } = await import('./app.js');
    await runCli();
  }
}
