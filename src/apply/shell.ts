/** Small pieces every step builder uses to make shell text. */
import type { ResourceChange } from '../model/plan.js';
import { shellQuote } from '../ssh/quote.js';

export interface ApplyStep {
  /** What a person reads in progress output and error reports. */
  description: string;
  command: string;
  undo: string;
  /**
   * Run at the end of a rollback when this step was started, after every undo:
   * a service restarted part-way is started again from the restored files.
   */
  recover?: string;
}

/** A change and the change that undoes it. */
export interface ChangePair {
  forward: ResourceChange;
  backward: ResourceChange;
}

export function sign(c: ResourceChange): string {
  return c.action === 'create' ? '+' : c.action === 'delete' ? '-' : '~';
}

/** A payload on a command's stdin: printf is a builtin and shellQuote keeps any text literal. */
export function pipeInto(payload: string, command: string): string {
  return `printf '%s' ${shellQuote(payload)} | ${command}`;
}
