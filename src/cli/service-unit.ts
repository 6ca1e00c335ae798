// The service unit `atlas daemon install-service` writes: a systemd user unit (Linux) or a
// launchd agent (macOS). Its name is readable: `atlas.service` for the default home,
// `atlas-<home's directory name>.service` for another one (with a short hash of the path
// added when that name is already taken by a unit for a different home). It carries the
// installing shell's PATH, so the agent commands and tools steps run are found as in the
// shell (a daemon under systemd otherwise gets a bare PATH).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DAEMON_MAIN, DAEMON_NODE_FLAGS } from '../client/client.js';

export interface ServiceUnit {
  kind: 'systemd' | 'launchd';
  /** systemd unit name (atlas.service) or launchd label. */
  name: string;
  file: string;
  text: string;
  /** The commands that enable it. */
  enable: string[];
  /** The command that starts it (so the service manager owns the daemon). */
  start: string;
}

const defaultHome = () => path.join(os.homedir(), '.atlas');

function homeName(home: string): string {
  const base = path.basename(home).replace(/^\.+/, '').replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return base || crypto.createHash('sha256').update(home).digest('hex').slice(0, 8);
}

function systemdDir(): string {
  return path.join(process.env['XDG_CONFIG_HOME'] || path.join(os.homedir(), '.config'), 'systemd', 'user');
}

function launchdDir(): string {
  return path.join(os.homedir(), 'Library', 'LaunchAgents');
}

/** The unit a file holds is for `home` when its command line names that home. */
function unitIsFor(file: string, home: string): boolean | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return text.includes(`--home ${home}\n`) || text.includes(`<string>${escapeXml(home)}</string></array>`);
}

/** The base name (without .service/.plist) for `home`'s unit. */
function baseName(home: string, dir: string, ext: string, prefix: string): string {
  if (home === defaultHome()) return prefix;
  const readable = `${prefix}-${homeName(home)}`;
  const taken = unitIsFor(path.join(dir, `${readable}${ext}`), home) === false;
  return taken ? `${readable}-${crypto.createHash('sha256').update(home).digest('hex').slice(0, 8)}` : readable;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** systemd quotes an assignment that holds spaces or quotes. */
function systemdQuote(assignment: string): string {
  return /[\s"\\]/.test(assignment) ? `"${assignment.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : assignment;
}

export function serviceUnit(home: string, pathVar: string = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin', platform: NodeJS.Platform = process.platform): ServiceUnit {
  const node = process.execPath;
  if (platform === 'darwin') {
    const dir = launchdDir();
    const label = baseName(home, dir, '.plist', 'dev.atlas.daemon');
    const file = path.join(dir, `${label}.plist`);
    const text = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>${label}</string>
  <key>ProgramArguments</key>
  <array><string>${escapeXml(node)}</string>${DAEMON_NODE_FLAGS.map((f) => `<string>${f}</string>`).join('')}<string>${escapeXml(DAEMON_MAIN)}</string><string>--quiet</string><string>--home</string><string>${escapeXml(home)}</string></array>
  <key>EnvironmentVariables</key>
  <dict><key>PATH</key><string>${escapeXml(pathVar)}</string></dict>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
</dict>
</plist>
`;
    return { kind: 'launchd', name: label, file, text, enable: [`launchctl load -w ${file}`], start: `launchctl start ${label}` };
  }
  const dir = systemdDir();
  const unit = `${baseName(home, dir, '.service', 'atlas')}.service`;
  const file = path.join(dir, unit);
  const text = `[Unit]
Description=atlas task daemon (${home})

[Service]
Type=simple
# The PATH of the shell that ran 'atlas daemon install-service'. To give steps more
# variables, add Environment= lines here (or with 'systemctl --user edit ${unit}').
Environment=${systemdQuote(`PATH=${pathVar}`)}
ExecStart=${node} ${DAEMON_NODE_FLAGS.join(' ')} ${DAEMON_MAIN} --quiet --home ${home}
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=default.target
`;
  return {
    kind: 'systemd',
    name: unit,
    file,
    text,
    enable: ['systemctl --user daemon-reload', `systemctl --user enable --now ${unit}`, 'loginctl enable-linger "$USER"   # to keep it running after you log out'],
    start: `systemctl --user start ${unit}`,
  };
}

/** The unit installed for `home`, if any. */
export function installedUnit(home: string): ServiceUnit | undefined {
  const u = serviceUnit(home);
  return unitIsFor(u.file, home) ? u : undefined;
}
