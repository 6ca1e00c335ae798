// A step's working directory: `cwd:` relative to the workspace, and inside it once every
// symlink on the way is resolved (`cwd: linkout` with `linkout -> /tmp` is refused; the
// template check already refuses `..` and absolute paths, which a symlink would get round).
import fs from 'node:fs';
import path from 'node:path';
import { AtlasError } from '../errors.js';

/** The real directory a step runs in; throws invalid_input when it lies outside the workspace. */
export function resolveStepCwd(workdir: string, cwd: string | undefined): string {
  if (!cwd) return workdir;
  const wanted = path.resolve(workdir, cwd);
  let realRoot: string;
  let real: string;
  try {
    realRoot = fs.realpathSync(workdir);
    real = fs.realpathSync(wanted);
  } catch {
    return wanted; // missing: the spawn reports it
  }
  const rel = path.relative(realRoot, real);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) return real;
  throw new AtlasError('invalid_input', `step cwd ${cwd} leads outside the workspace (to ${real}) through a symlink; it must stay inside ${realRoot}`, {
    details: { cwd, resolved: real, workspace: realRoot },
  });
}
