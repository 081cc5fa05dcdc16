import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApplyScript, parseApplyOutput } from '../../src/apply/script.js';
import type { ApplyStep } from '../../src/apply/steps.js';

function runScript(steps: ApplyStep[], errorFile: string) {
  const { script, marker } = buildApplyScript(steps, { verifyScript: 'echo verified', errorFile });
  const out = execFileSync('sh', ['-s'], { input: script, encoding: 'utf8' });
  return { out, outcome: parseApplyOutput(out, marker, steps) };
}

describe('apply script', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lbprov-script-'));
  const log = join(dir, 'log');
  const errorFile = join(dir, 'step.err');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const step = (name: string, fails = false): ApplyStep => ({
    description: name,
    command: fails ? `echo "${name} broke" >&2; exit 3` : `echo do-${name} >> ${log}`,
    undo: `echo undo-${name} >> ${log}`,
  });

  it('runs every step in order when all succeed, then the verification', () => {
    rmSync(log, { force: true });
    const { out, outcome } = runScript([step('a'), step('b')], errorFile);
    expect(outcome).toMatchObject({ applied: true, stepsRun: 2, undoFailures: [] });
    expect(readFileSync(log, 'utf8')).toBe('do-a\ndo-b\n');
    expect(out.trimEnd().endsWith('verified')).toBe(true);
  });

  it('stops at the failing step and undoes only the steps that ran, newest first', () => {
    rmSync(log, { force: true });
    const { outcome } = runScript([step('a'), step('b'), step('c', true), step('d')], errorFile);
    expect(outcome.applied).toBe(false);
    expect(outcome.failedStep).toEqual({ index: 3, description: 'c', output: 'c broke' });
    expect(readFileSync(log, 'utf8')).toBe('do-a\ndo-b\nundo-b\nundo-a\n');
  });

  it('keeps quotes, $(...) and newlines in step text inert', () => {
    rmSync(log, { force: true });
    const nasty = `it's $(touch ${dir}/pwned) \`touch ${dir}/pwned2\`\nnext line`;
    const { outcome } = runScript([{ description: nasty, command: `printf '%s' ok >> ${log}`, undo: 'true' }], errorFile);
    expect(outcome.applied).toBe(true);
    expect(() => readFileSync(join(dir, 'pwned'))).toThrow();
    expect(() => readFileSync(join(dir, 'pwned2'))).toThrow();
  });
});
