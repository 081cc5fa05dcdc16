/**
 * How many gateways a run handles at once when --forks does not say. A gateway's turn is mostly
 * waiting (its handshake, its facts script, its apply), so the bound is the controller's CPU for
 * key exchanges, rendering and diffing: measured on a 2-core machine, 1,000 lab gateways planned
 * fastest from about 32 per core (past that the event loop only queues more work; see README).
 */
import { availableParallelism } from 'node:os';
import { InputError } from '../errors.js';

const FORKS_PER_CORE = 32;
const MIN_FORKS = 16;
export const MAX_FORKS = 1000;

export function defaultForks(cores = availableParallelism()): number {
  return Math.min(256, Math.max(MIN_FORKS, FORKS_PER_CORE * cores));
}

/** `--forks`: a whole number from 1 to MAX_FORKS, or `auto` (defaultForks). */
export function parseForks(value: string | undefined): number {
  if (value === undefined || value === 'auto') return defaultForks();
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_FORKS) throw new InputError('command line', '--forks', `must be a whole number from 1 to ${MAX_FORKS}, or auto; got "${value}"`);
  return n;
}
