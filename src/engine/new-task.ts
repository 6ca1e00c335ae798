// Making a new task's record from a template: its inputs checked and defaulted, its steps
// copied in (later template edits never change a task that has started).
import { AtlasError } from '../errors.js';
import type { StepState } from '../store/records.js';
import { WHOLE_INPUT_REF, parseDuration, type Template } from '../templates/schema.js';

export function newStepState(definition: StepState['definition']): StepState {
  return {
    name: definition.name,
    type: definition.type,
    status: 'pending',
    attempts: 0,
    started_at: null,
    completed_at: null,
    error: null,
    definition,
    process: null,
    deadline: null,
    next_attempt_at: null,
  };
}

/** Checks given inputs against the template: unknown ones refused, required ones present, defaults applied. */
export function resolveInputs(template: Template, given: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(given)) {
    if (!(k in template.inputs)) {
      const known = Object.keys(template.inputs);
      throw new AtlasError('invalid_input', `template ${template.name} has no input '${k}'; its inputs are: ${known.join(', ') || '(none)'}`, {
        details: { input: k, known },
      });
    }
    if (typeof v !== 'string') throw new AtlasError('invalid_input', `input '${k}' must be a string`);
    if (v.includes('\0')) throw new AtlasError('invalid_input', `input '${k}' contains a NUL byte`);
    out[k] = v;
  }
  for (const [k, spec] of Object.entries(template.inputs)) {
    if (out[k] !== undefined) continue;
    if (spec.default !== undefined) out[k] = spec.default;
    else if (spec.required) throw new AtlasError('invalid_input', `template ${template.name} needs input '${k}'${spec.description ? ` (${spec.description})` : ''}: pass -i ${k}=VALUE`, { details: { input: k } });
  }
  return out;
}

/** A ci step's `interval: "{{ inputs.x }}"` must get a duration: refused at start, not at the step. */
export function checkDurationInputs(template: Template, inputs: Record<string, string>): void {
  for (const step of template.steps) {
    if (step.type !== 'ci' || typeof step.interval !== 'string') continue;
    const ref = WHOLE_INPUT_REF.exec(step.interval);
    if (!ref) continue;
    const value = inputs[ref[1]!] ?? '';
    if (parseDuration(value) === undefined) {
      throw new AtlasError('invalid_input', `input '${ref[1]}' is step ${step.name}'s interval: expected a duration such as 30s or 2m, got ${JSON.stringify(value)}`, {
        details: { input: ref[1], step: step.name },
      });
    }
  }
}
