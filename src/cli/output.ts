/** Where command output goes: results on stdout, progress and errors on stderr. */
import { createInterface } from 'node:readline/promises';
import ora, { type Ora } from 'ora';
import { InputError, LbprovError, RemoteError } from '../errors.js';
import { coloursFor } from '../report/plan-text.js';
import { hasLiveTerminal } from '../report/progress.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_CHANGES = 2;

export function reportFatal(e: unknown): number {
  const c = coloursFor(process.stderr);
  if (e instanceof InputError || e instanceof RemoteError || e instanceof LbprovError) {
    process.stderr.write(c.red(`error: ${e.message}\n`));
  } else {
    process.stderr.write(c.red(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
  }
  return EXIT_ERROR;
}

/** A spinner on a terminal it can redraw; plain progress text elsewhere (CI logs). */
export function progress(text: string, json: boolean): Ora {
  return ora({ text, stream: process.stderr, isEnabled: hasLiveTerminal(process.stderr) && !json, isSilent: json });
}


/** A yes/no question on the terminal; without a terminal only `yes` (--yes) proceeds. */
export async function askToProceed(question: string, yes: boolean | undefined): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new LbprovError(`refusing to go on without confirmation: not on a terminal (pass --yes)`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
