// human: shows its prompt and waits for `atlas approve` or `atlas reject`. The engine parks
// the task in awaiting_approval; nothing runs and no slot is held while it waits.
import { outcome, type StepContext, type StepExecutor, type StepOutcome } from './executor.js';

export const humanExecutor: StepExecutor = {
  async run(_ctx: StepContext): Promise<StepOutcome> {
    return outcome('awaiting_approval');
  },
};
