import { LbprovError } from '../errors.js';

/** The lab could not be built, used or removed on this machine. */
export class LabError extends LbprovError {
  override name = 'LabError';
}
