// Loading templates: YAML parsed with positions, checked against the schema, and every
// problem reported as `file:line: field: message`. User templates in $ATLAS_HOME/templates
// override built-ins of the same name.
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Document, LineCounter } from 'yaml';
import { lazyYaml } from '../util/lazy-package.js';
import { packageRoot } from '../util/package-root.js';
import type { z } from 'zod';
import { AtlasError, errnoCode, storageError } from '../errors.js';
import { assertName, isValidName } from '../store/names.js';
import { STEP_TYPES, stepSchemaFor, templateHeaderSchema, type StepSpec, type Template } from './schema.js';

export const BUILTIN_DIR = path.join(packageRoot(), 'templates');

export interface TemplateProblem {
  file: string;
  line: number;
  field: string;
  message: string;
}

export class TemplateError extends AtlasError {
  readonly problems: TemplateProblem[];
  constructor(problems: TemplateProblem[]) {
    const text = problems.map(formatProblem).join('\n');
    super('template_invalid', `invalid template:\n${text}`, { details: { problems } });
    this.problems = problems;
  }
}

/** An input reference inside a string run by a second shell: `sh -c '... {{ inputs.x }} ...'`. */
const SECOND_SHELL = /\b(?:sh|bash|dash|zsh|ksh)\s+(?:-[a-z]*c[a-z]*)\s+(?:'[^']*|"[^"]*)\{\{\s*inputs\.([A-Za-z0-9_]+)\s*\}\}/;

export function formatProblem(p: TemplateProblem): string {
  return `${p.file}:${p.line}: ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

function fieldPath(segments: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out ? `.${String(s)}` : String(s);
  return out;
}

/** Parses and checks template text; throws a TemplateError naming file, line and field. */
export function parseTemplate(text: string, file: string, builtin = false): Template {
  const yaml = lazyYaml();
  const lineCounter = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: TemplateProblem[] = [];
  const lineOf = (segments: ReadonlyArray<PropertyKey>): number => lineAt(doc, lineCounter, segments);

  for (const e of doc.errors) {
    problems.push({ file, line: e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line, field: '', message: e.message.split('\n')[0] ?? e.message });
  }
  if (problems.length) throw new TemplateError(problems);

  const raw: unknown = doc.toJS();
  const header = templateHeaderSchema.safeParse(raw);
  // Every class of problem is reported at once: a bad header does not hide the steps' problems.
  if (!header.success) for (const issue of header.error.issues) problems.push(issueProblem(file, issue, [], lineOf));
  const top = (typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  const rawSteps: unknown[] = header.success ? header.data.steps : Array.isArray(top['steps']) ? top['steps'] : [];
  const rawInputs = header.success ? (header.data.inputs ?? {}) : typeof top['inputs'] === 'object' && top['inputs'] !== null ? top['inputs'] : {};
  const steps: StepSpec[] = [];
  const seen = new Map<string, number>();
  rawSteps.forEach((rawStep, i) => {
    const type = typeof rawStep === 'object' && rawStep !== null ? (rawStep as Record<string, unknown>)['type'] : undefined;
    const schema = stepSchemaFor(type);
    if (!schema) {
      problems.push({
        file,
        line: lineOf(['steps', i, type === undefined ? '' : 'type']),
        field: `steps[${i}].type`,
        message: type === undefined ? `missing; expected one of ${STEP_TYPES.join(', ')}` : `unknown step type ${JSON.stringify(type)}; expected one of ${STEP_TYPES.join(', ')}`,
      });
      return;
    }
    const parsed = schema.safeParse(rawStep);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(issueProblem(file, issue, ['steps', i], lineOf));
      return;
    }
    const step = parsed.data as StepSpec;
    const prev = seen.get(step.name);
    if (prev !== undefined) {
      problems.push({ file, line: lineOf(['steps', i, 'name']), field: `steps[${i}].name`, message: `duplicate step name ${JSON.stringify(step.name)} (also steps[${prev}])` });
    }
    seen.set(step.name, i);
    if (step.cwd !== undefined && (path.isAbsolute(step.cwd) || step.cwd.split(/[\\/]/).includes('..'))) {
      problems.push({ file, line: lineOf(['steps', i, 'cwd']), field: `steps[${i}].cwd`, message: 'must be a relative path inside the workspace' });
    }
    steps.push(step);
  });
  // {{ inputs.x }} must name a declared input.
  const declared = new Set(Object.keys(rawInputs));
  const refRe = /\{\{\s*inputs\.([A-Za-z0-9_]+)\s*\}\}/g;
  const warnings: string[] = [];
  rawSteps.forEach((rawStep, i) => {
    const visit = (v: unknown, segs: PropertyKey[]): void => {
      if (typeof v === 'string') {
        for (const m of v.matchAll(refRe)) {
          if (!declared.has(m[1] ?? '')) {
            problems.push({ file, line: lineOf(['steps', i, ...segs]), field: fieldPath(['steps', i, ...segs]), message: `uses undeclared input '${m[1]}'` });
          }
        }
        const inner = SECOND_SHELL.exec(v);
        if (inner) {
          const env = `ATLAS_INPUT_${(inner[1] ?? '').toUpperCase()}`;
          warnings.push(formatProblem({ file, line: lineOf(['steps', i, ...segs]), field: fieldPath(['steps', i, ...segs]), message: `warning: {{ inputs.${inner[1]} }} inside a string that a second shell runs (sh -c '...') is parsed by that shell, so the input can inject commands; write "$${env}" there instead` }));
        }
      } else if (Array.isArray(v)) v.forEach((x, j) => visit(x, [...segs, j]));
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) visit(x, [...segs, k]);
    };
    visit(rawStep, []);
  });
  const base = path.basename(file).replace(/\.ya?ml$/, '');
  const name = header.success ? header.data.name : typeof top['name'] === 'string' && isValidName(top['name']) ? top['name'] : undefined;
  if (!builtin && name !== undefined && isValidName(base) && base !== name && !file.startsWith('<')) {
    // A file's name is how users call it; a mismatch would make it unreachable by its own name.
    problems.push({ file, line: lineOf(['name']), field: 'name', message: `is ${JSON.stringify(name)} but the file is named ${base}.yaml; make them match` });
  }
  if (problems.length || !header.success) throw new TemplateError(problems);
  return {
    ...(warnings.length ? { warnings } : {}),
    name: header.data.name,
    description: header.data.description ?? '',
    inputs: header.data.inputs ?? {},
    env: header.data.env ?? {},
    steps,
    source: builtin ? `builtin:${header.data.name}` : file,
    builtin,
  };
}

function issueProblem(file: string, issue: z.core.$ZodIssue, prefix: PropertyKey[], lineOf: (s: ReadonlyArray<PropertyKey>) => number): TemplateProblem {
  let segs: PropertyKey[] = [...prefix, ...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    message = `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`;
    if (keys[0] !== undefined) segs = [...segs, keys[0]];
  } else if (issue.code === 'invalid_type' && message.includes('received undefined')) {
    message = 'is required';
  }
  return { file, line: lineOf(segs), field: fieldPath(segs), message };
}

/** The line of the deepest node along `segments` that exists in the document (1-based). */
export function lineAt(doc: Document, lc: LineCounter, segments: ReadonlyArray<PropertyKey>): number {
  const { isMap, isSeq } = lazyYaml();
  let node: unknown = doc.contents;
  let line = 1;
  const take = (n: unknown) => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    if (r) line = lc.linePos(r[0]).line;
  };
  take(node);
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) break;
      take(pair.key);
      node = pair.value;
      if (node && !isMap(node) && !isSeq(node)) take(node);
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      take(node);
    } else break;
  }
  return line;
}

/** Templates parsed from files, with the file's stats when it was read: a file is parsed again
 *  only once it changes (parsing a 100-step template allocated ~5 MB at every task start). */
const parsed = new Map<string, { sig: string; builtin: boolean; template: Template }>();
const PARSED_MAX = 64;

export async function loadTemplateFile(file: string, builtin = false): Promise<Template> {
  let text: string;
  let sig: string;
  try {
    const st = await fsp.stat(file);
    sig = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const hit = parsed.get(file);
    if (hit && hit.sig === sig && hit.builtin === builtin) return structuredClone(hit.template);
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new AtlasError('not_found', `no template file ${file}`, { details: { file } });
    throw storageError('read', file, err);
  }
  const template = parseTemplate(text, file, builtin);
  // A file changed between the stat and the read is cached under its old stats, so the next
  // load parses it again: never a stale template.
  parsed.delete(file);
  parsed.set(file, { sig, builtin, template: structuredClone(template) });
  if (parsed.size > PARSED_MAX) parsed.delete(parsed.keys().next().value!);
  return template;
}

export interface TemplateInfo {
  name: string;
  description: string;
  source: string;
  builtin: boolean;
  overrides_builtin: boolean;
  steps: number;
  error?: string;
}

/** Finds templates by name: the home's templates/ first, then the built-ins. */
export class TemplateRegistry {
  constructor(
    private readonly userDir: string,
    private readonly builtinDir: string = BUILTIN_DIR,
  ) {}

  get builtinDirectory(): string {
    return this.builtinDir;
  }

  async get(name: string): Promise<Template> {
    assertName('template', name);
    const user = path.join(this.userDir, `${name}.yaml`);
    try {
      return await loadTemplateFile(user);
    } catch (err) {
      if (!(err instanceof AtlasError && err.code === 'not_found')) throw err;
    }
    try {
      return await loadTemplateFile(path.join(this.builtinDir, `${name}.yaml`), true);
    } catch (err) {
      if (err instanceof AtlasError && err.code === 'not_found') {
        const names = (await this.list()).map((t) => t.name);
        throw new AtlasError('not_found', `no template ${name}; available: ${names.join(', ') || '(none)'}`, { details: { name, available: names } });
      }
      throw err;
    }
  }

  async list(): Promise<TemplateInfo[]> {
    const byName = new Map<string, TemplateInfo>();
    for (const [dir, builtin] of [[this.builtinDir, true], [this.userDir, false]] as const) {
      for (const file of await yamlFiles(dir)) {
        const name = path.basename(file).replace(/\.ya?ml$/, '');
        if (!isValidName(name)) continue;
        const overrides = !builtin && byName.has(name);
        try {
          const t = await loadTemplateFile(file, builtin);
          byName.set(name, { name, description: t.description, source: t.source, builtin, overrides_builtin: overrides, steps: t.steps.length });
        } catch (err) {
          byName.set(name, { name, description: '', source: file, builtin, overrides_builtin: overrides, steps: 0, error: (err as Error).message });
        }
      }
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}

async function yamlFiles(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).filter((f) => f.endsWith('.yaml')).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}
