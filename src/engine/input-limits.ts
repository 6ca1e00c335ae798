// How big an input may be. Inputs reach a step's command as environment variables, and Linux
// refuses to start a process with one `NAME=value` string over 128 KiB (MAX_ARG_STRLEN) or
// with arguments and environment together over about 2 MiB: the spawn would fail late with
// E2BIG. So `start` refuses such inputs at once, naming the limit.
import { AtlasError } from '../errors.js';
import { inputEnvName } from './interpolate.js';

/** The largest `ATLAS_INPUT_<NAME>=value` one input may make, in bytes. */
export const MAX_INPUT_ENV_BYTES = 128 * 1024 - 1;
/** All inputs together, leaving room for the rest of a step's environment. */
export const MAX_INPUTS_TOTAL_BYTES = 1024 * 1024;

export function assertInputSizes(inputs: Record<string, string>): void {
  let total = 0;
  for (const [name, value] of Object.entries(inputs)) {
    const bytes = Buffer.byteLength(`${inputEnvName(name)}=${value}`);
    total += bytes;
    if (bytes > MAX_INPUT_ENV_BYTES) {
      throw new AtlasError(
        'invalid_input',
        `input ${name} is ${Buffer.byteLength(value)} bytes; an input reaches its step as an environment variable, which may hold at most ${MAX_INPUT_ENV_BYTES} bytes (128 KiB, with its name): put it in a file in the workspace and pass the file's path instead`,
        { details: { input: name, bytes: Buffer.byteLength(value), limit: MAX_INPUT_ENV_BYTES } },
      );
    }
  }
  if (total > MAX_INPUTS_TOTAL_BYTES) {
    throw new AtlasError('invalid_input', `the inputs come to ${total} bytes together; at most ${MAX_INPUTS_TOTAL_BYTES} (1 MiB) fit in a step's environment`, {
      details: { bytes: total, limit: MAX_INPUTS_TOTAL_BYTES },
    });
  }
}
