// Step type -> executor.
import type { StepType } from '../templates/schema.js';
import { aiExecutor } from './ai.js';
import { ciExecutor } from './ci.js';
import type { StepExecutor } from './executor.js';
import { gitExecutor } from './git.js';
import { humanExecutor } from './human.js';
import { shellExecutor } from './shell.js';
import { validationExecutor } from './validation.js';
import { waitExecutor } from './wait.js';

export const EXECUTORS: Readonly<Record<StepType, StepExecutor>> = {
  shell: shellExecutor,
  validation: validationExecutor,
  ai: aiExecutor,
  human: humanExecutor,
  git: gitExecutor,
  ci: ciExecutor,
  wait: waitExecutor,
};
