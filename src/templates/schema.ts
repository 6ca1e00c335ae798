// The template schema (DESIGN §4). A template is YAML: a name, optional inputs and env, and
// an ordered list of steps. Every step has the common fields below plus its type's own.
// The schema is strict: an unknown key is an error that names it, so a typo never turns
// into a silently ignored setting.
import { z } from 'zod';
import { NAME_PATTERN } from '../store/names.js';

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `10m`, `1.5h`, `250ms`, or a number of seconds, into milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  const m = DURATION_RE.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000));
}

export const durationSchema = z
  .union([z.string(), z.number()])
  .refine((v) => parseDuration(v) !== undefined, { message: "expected a duration such as '90s', '10m', '1h' or a number of seconds" });

/** A reference to one input, standing for a whole field's value (`interval: "{{ inputs.every }}"`). */
export const WHOLE_INPUT_REF = /^\{\{\s*inputs\.([a-z][a-z0-9_]*)\s*\}\}$/;

/** A duration, or an input that must hold one (checked when the task starts). */
export const durationOrInputSchema = z.union([z.string().regex(WHOLE_INPUT_REF), durationSchema]);

const nameSchema = z.string().regex(NAME_PATTERN, { message: "expected a name of a-z, 0-9, '.', '_', '-' (at most 64, starting with a letter or digit)" });
const inputNameSchema = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { message: 'expected an input name of a-z, 0-9 and _, starting with a letter' });
const envSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'expected an environment variable name' }), z.union([z.string(), z.number(), z.boolean()]).transform(String));

export const retriesSchema = z
  .object({
    max: z.number().int().min(0).max(100),
    backoff: durationSchema.optional(),
    max_backoff: durationSchema.optional(),
  })
  .strict();

const common = {
  name: nameSchema,
  timeout: durationSchema.optional(),
  retries: retriesSchema.optional(),
  env: envSchema.optional(),
  cwd: z.string().optional(),
  on_interrupt: z.enum(['rerun', 'pause']).optional(),
  continue_on_error: z.boolean().optional(),
  description: z.string().optional(),
};

const commandItem = z.union([z.string().min(1), z.object({ name: z.string().optional(), run: z.string().min(1) }).strict()]);

const shellStep = z
  .object({ ...common, type: z.literal('shell'), run: z.string().min(1).optional(), commands: z.array(commandItem).min(1).optional() })
  .strict()
  .refine((s) => (s.run === undefined) !== (s.commands === undefined), { message: "a shell step needs exactly one of 'run' or 'commands'", path: ['run'] });

const validationStep = z.object({ ...common, type: z.literal('validation'), commands: z.array(commandItem).min(1) }).strict();

const aiStep = z.object({ ...common, type: z.literal('ai'), prompt: z.string().min(1), command: z.string().min(1).optional() }).strict();

const humanStep = z.object({ ...common, type: z.literal('human'), prompt: z.string().min(1).optional() }).strict();

const gitStep = z
  .object({
    ...common,
    type: z.literal('git'),
    action: z.enum(['commit', 'push', 'branch']),
    message: z.string().min(1).optional(),
    branch: z.string().min(1).optional(),
    remote: z.string().min(1).optional(),
    allow_empty: z.boolean().optional(),
    optional: z.boolean().optional(),
  })
  .strict()
  .refine((s) => s.action !== 'commit' || s.message !== undefined, { message: "a git commit step needs 'message'", path: ['message'] })
  .refine((s) => s.action !== 'branch' || s.branch !== undefined, { message: "a git branch step needs 'branch'", path: ['branch'] });

const ciStep = z
  .object({ ...common, type: z.literal('ci'), command: z.string().min(1), interval: durationOrInputSchema.optional() })
  .strict();

const waitStep = z
  .object({ ...common, type: z.literal('wait'), duration: durationSchema.optional(), until: z.string().optional() })
  .strict()
  .refine((s) => (s.duration === undefined) !== (s.until === undefined), { message: "a wait step needs exactly one of 'duration' or 'until'", path: ['duration'] })
  .refine((s) => s.until === undefined || !Number.isNaN(Date.parse(s.until)), { message: "'until' must be an ISO 8601 time", path: ['until'] });

export const STEP_TYPES = ['shell', 'validation', 'ai', 'human', 'git', 'ci', 'wait'] as const;
export type StepType = (typeof STEP_TYPES)[number];

export const stepSchema = z.union([shellStep, validationStep, aiStep, humanStep, gitStep, ciStep, waitStep]);

const stepSchemas: Record<StepType, z.ZodType> = {
  shell: shellStep,
  validation: validationStep,
  ai: aiStep,
  human: humanStep,
  git: gitStep,
  ci: ciStep,
  wait: waitStep,
};

export function stepSchemaFor(type: unknown): z.ZodType | undefined {
  return typeof type === 'string' && (STEP_TYPES as readonly string[]).includes(type) ? stepSchemas[type as StepType] : undefined;
}

export const inputSchema = z
  .object({
    description: z.string().optional(),
    required: z.boolean().optional(),
    default: z.union([z.string(), z.number(), z.boolean()]).transform(String).optional(),
  })
  .strict();

export const templateHeaderSchema = z
  .object({
    name: nameSchema,
    description: z.string().optional(),
    inputs: z.record(inputNameSchema, inputSchema).optional(),
    env: envSchema.optional(),
    steps: z.array(z.unknown()).min(1, { message: 'a template needs at least one step' }),
  })
  .strict();

export type StepSpec = z.infer<typeof stepSchema>;
export type InputSpec = z.infer<typeof inputSchema>;

export interface Template {
  name: string;
  description: string;
  inputs: Record<string, InputSpec>;
  env: Record<string, string>;
  steps: StepSpec[];
  /** Where it came from: a file path, or 'builtin:<name>'. */
  source: string;
  builtin: boolean;
  /** Allowed but probably wrong (`file:line: field: warning: ...`), shown by `template validate`. */
  warnings?: string[];
}
