/** Where command output goes: results on stdout, progress and errors on stderr. */
import { createInterface } from 'node:readline/promises';
import { InputError, LbprovError, RemoteError } from '../errors.js';
import { coloursFor } from '../report/plan-text.js';
import { hasLiveTerminal, loadOra } from '../report/progress.js';

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

export interface Spinner {
  text: string;
  stop(): void;
}

/** A started spinner on a terminal it can redraw; one plain line elsewhere (CI logs); nothing with --json. */
export async function progress(text: string, json: boolean): Promise<Spinner> {
  if (!json && hasLiveTerminal(process.stderr)) {
    const ora = await loadOra();
    return ora({ text, stream: process.stderr, discardStdin: false }).start();
  }
  if (!json) process.stderr.write(`- ${text}\n`);
  return { text, stop() {} };
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
