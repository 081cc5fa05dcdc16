/**
 * The confirm-or-revert decision, run by a real sh against a transaction folder of the test's own:
 * the controller decides only an armed (pending) transaction; when the gateway's timer won the race
 * the script waits for the end of its revert and says so, so a revert in progress is never read as
 * a state that does not match the plan.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { confirmScript, parseDecision, revertNowScript, txnDir, type RunIdentity } from '../../src/apply/transaction.js';
import { AUDIT_LOG, LOCK_DIR, LOG_DIR } from '../../src/model/paths.js';

const work = mkdtempSync(join(tmpdir(), 'lbprov-decision-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let runs = 0;
function transaction(result: string | null): { id: RunIdentity; dir: string } {
  const id: RunIdentity = { run: `r${++runs}`, controller: 'tester@controller', controllerPid: 4242 };
  const dir = join(work, id.run);
  mkdirSync(dir, { recursive: true });
  if (result !== null) writeFileSync(join(dir, 'result'), `${result}\n`);
  // An undo that leaves a trace: the test sees whether the decision ran it.
  writeFileSync(join(dir, 'undo.sh'), `echo undone >> ${join(dir, 'undo-ran')}\n`);
  return { id, dir };
}

/** The script with the gateway's paths moved into the test's folder. */
function local(script: string, id: RunIdentity, dir: string): string {
  return script
    .replaceAll(txnDir(id), dir)
    .replaceAll(AUDIT_LOG, join(dir, 'audit.log'))
    .replaceAll(LOCK_DIR, join(dir, 'lock'))
    .replaceAll(LOG_DIR, dir);
}

const runSh = (script: string) => spawnSync('sh', ['-s'], { input: script, encoding: 'utf8' });

describe('the decision on a pending transaction', () => {
  it('confirms an armed transaction: the controller decides and records it', () => {
    const { id, dir } = transaction('pending');
    const out = runSh(local(confirmScript(id), id, dir));
    expect(out.status, out.stderr).toBe(0);
    expect(parseDecision(out.stdout)).toEqual({ by: 'controller', result: 'confirmed' });
    expect(readFileSync(join(dir, 'result'), 'utf8').trim()).toBe('confirmed');
    expect(existsSync(join(dir, 'undo-ran'))).toBe(false);
  });

  it('reverts an armed transaction when the state does not match', () => {
    const { id, dir } = transaction('pending');
    const out = runSh(local(revertNowScript(id), id, dir));
    expect(parseDecision(out.stdout)).toEqual({ by: 'controller', result: 'reverted' });
    expect(readFileSync(join(dir, 'undo-ran'), 'utf8')).toBe('undone\n');
  });

  it('waits for a revert the timer is running and reports the timer, not a mismatch', async () => {
    const { id, dir } = transaction('pending');
    // The timer won: it made the decision folder and is undoing; its result lands 0.8 s later,
    // after a moment where the result file is empty (truncated before the write).
    mkdirSync(join(dir, 'decided'));
    const timer = spawn('sh', ['-c', `sleep 0.4; : > ${dir}/result; sleep 0.4; echo reverted > ${dir}/result`]);
    const timerDone = new Promise((resolve) => timer.on('close', resolve));
    const out = await new Promise<string>((resolve) => {
      const child = spawn('sh', ['-s']);
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('close', () => resolve(stdout));
      child.stdin.end(local(revertNowScript(id), id, dir));
    });
    await timerDone;
    expect(parseDecision(out)).toEqual({ by: 'timer', result: 'reverted' });
    expect(existsSync(join(dir, 'undo-ran'))).toBe(false);
  });

  it('never undoes an apply that rolled back by itself', () => {
    const { id, dir } = transaction('rolled-back');
    const out = runSh(local(revertNowScript(id), id, dir));
    expect(parseDecision(out.stdout)).toEqual({ by: 'apply', result: 'rolled-back' });
    expect(existsSync(join(dir, 'undo-ran'))).toBe(false);
    expect(existsSync(join(dir, 'decided'))).toBe(false);
  });
});

describe('parseDecision', () => {
  it('reads the last line and refuses what is not a decision', () => {
    expect(parseDecision('noise\ndecided confirmed\n')).toEqual({ by: 'controller', result: 'confirmed' });
    expect(parseDecision('already \n')).toEqual({ by: 'timer', result: '' });
    expect(parseDecision('already revert-failed')).toEqual({ by: 'timer', result: 'revert-failed' });
    expect(parseDecision('')).toBeNull();
    expect(parseDecision('decided confirmed; rm -rf /')).toBeNull();
  });
});
