/**
 * steps -> one POSIX shell script run in a single round trip. It stops at the
 * first failing step, undoes the steps that ran (newest first) and reports
 * which step failed with its output; then it prints fresh facts so the
 * controller can verify the result without another round trip.
 */
import type { ApplyStep } from '../model/steps.js';
import { shellQuote } from '../remote/quote.js';
import { newMarker, PREAMBLE } from '../remote/sections.js';

export interface ApplyScript {
  marker: string;
  script: string;
}

export interface ApplyScriptParts {
  /** Printed facts after the steps, so the result is verified without another round trip. */
  verifyScript: string;
  /** Shell run when every step succeeded (arm the confirm timer, write the audit record...). */
  onSuccess?: string;
  /** Shell run after a rollback. */
  onFailure?: string;
  /** Shell word naming a scratch file for a step's output (a file of the transaction: no mktemp). */
  errorFile: string;
}

export function buildApplyScript(steps: readonly ApplyStep[], parts: ApplyScriptParts, marker = newMarker()): ApplyScript {
  const lines = [
    PREAMBLE,
    'umask 022',
    `m=${marker}`,
    `e=${parts.errorFile}`,
    'ok=1; applied=" "; started=" "',
    'step() { printf "@@%s step %s %s\\n" "$m" "$1" "$2"; started=" $1$started"; if (eval "$3") </dev/null >"$e" 2>&1; then applied=" $1$applied"; else printf "@@%s failed %s\\n" "$m" "$1"; head -c 8192 "$e"; printf "\\n@@%s endfailed\\n" "$m"; ok=0; fi; }',
    'undo() { case "$applied" in *" $1 "*) if ! (eval "$2") </dev/null >"$e" 2>&1; then printf "@@%s undofailed %s\\n" "$m" "$1"; head -c 2048 "$e"; echo; fi;; esac; }',
  ];
  steps.forEach((s, i) => {
    lines.push(`[ $ok = 1 ] && step ${i + 1} ${shellQuote(s.description)} ${shellQuote(s.command)}`);
  });
  lines.push('if [ $ok = 0 ]; then');
  for (let i = steps.length - 1; i >= 0; i--) lines.push(`  undo ${i + 1} ${shellQuote(steps[i]!.undo)}`);
  steps.forEach((s, i) => {
    if (s.recover) lines.push(`  case "$started" in *" ${i + 1} "*) (eval ${shellQuote(s.recover)}) </dev/null >/dev/null 2>&1 || printf "@@%s undofailed %s\\n" "$m" ${i + 1};; esac`);
  });
  if (parts.onFailure) lines.push(parts.onFailure);
  lines.push('fi');
  if (parts.onSuccess) lines.push('if [ $ok = 1 ]; then', parts.onSuccess, 'fi');
  lines.push('printf "@@%s result %s\\n" "$m" "$ok"', parts.verifyScript);
  return { marker, script: lines.join('\n') + '\n' };
}

/** Every step's undo, newest first, then the recoveries: what the confirm timer runs to revert. */
export function buildUndoScript(steps: readonly ApplyStep[]): string {
  const lines = [PREAMBLE, 'umask 022', 'rc=0'];
  for (let i = steps.length - 1; i >= 0; i--) lines.push(`(eval ${shellQuote(steps[i]!.undo)}) </dev/null || rc=1`);
  for (const s of steps) if (s.recover) lines.push(`(eval ${shellQuote(s.recover)}) </dev/null || rc=1`);
  lines.push('exit $rc');
  return lines.join('\n') + '\n';
}

export interface ApplyOutcome {
  /** The output reached the apply's result line (else it was cut short). */
  complete: boolean;
  applied: boolean;
  stepsRun: number;
  failedStep?: { index: number; description: string; output: string };
  undoFailures: number[];
}

export function parseApplyOutput(output: string, marker: string, steps: readonly ApplyStep[]): ApplyOutcome {
  const started = [...output.matchAll(new RegExp(`^@@${marker} step (\\d+) `, 'gm'))].length;
  const result = new RegExp(`^@@${marker} result ([01])$`, 'm').exec(output);
  const failed = new RegExp(`^@@${marker} failed (\\d+)\\n([\\s\\S]*?)\\n@@${marker} endfailed$`, 'm').exec(output);
  const undoFailures = [...output.matchAll(new RegExp(`^@@${marker} undofailed (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
  const outcome: ApplyOutcome = { complete: result !== null, applied: result?.[1] === '1', stepsRun: started, undoFailures };
  if (failed) {
    const index = Number(failed[1]);
    outcome.failedStep = { index, description: steps[index - 1]?.description ?? '?', output: failed[2]!.trim() };
  }
  return outcome;
}
