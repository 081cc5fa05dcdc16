/**
 * The gateway's lock script, run by a real sh against a lock folder of the test's own: taken when
 * free, re-entrant for its run, refused while a live process holds it, taken over from a dead
 * holder, and taken from an owner-less folder only after the holder had time to write its name.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_LOCKED, acquireLockScript, lockFunctions, releaseLockScript, type RunIdentity } from '../../src/apply/transaction.js';

const work = mkdtempSync(join(tmpdir(), 'lbprov-lock-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let folders = 0;
const freshLockDir = () => join(work, `run${++folders}`, 'lock');
const id = (run: string): RunIdentity => ({ run, controller: 'tester@controller', controllerPid: 4242 });

function startTime(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[19]!;
}

function owner(lockDir: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(join(lockDir, 'owner'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function writeOwner(lockDir: string, fields: Record<string, string | number>): void {
  mkdirSync(lockDir, { recursive: true });
  writeFileSync(join(lockDir, 'owner'), Object.entries(fields).map(([k, v]) => `${k}=${v}\n`).join(''));
}

function takeLock(lockDir: string, run: string, waitS: number) {
  const script = acquireLockScript(id(run), waitS, { lockDir, now: 1_700_000_000_000 }) + '\necho got-lock\n';
  const started = Date.now();
  const result = spawnSync('sh', ['-s'], { input: script, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

describe('gateway lock script', () => {
  it('takes a free lock and names its holder with the holder start time, the run and the controller', () => {
    const lockDir = freshLockDir();
    const r = takeLock(lockDir, 'aaaa', 1);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('got-lock');
    expect(r.stderr).toBe('');
    const o = owner(lockDir);
    expect(o).toMatchObject({ run: 'aaaa', controller: 'tester@controller', controller_pid: '4242', since: '1700000000' });
    expect(o['pid']).toMatch(/^\d+$/);
    expect(o['start']).toMatch(/^\d+$/);
  });

  it('is re-entrant for its own run and leaves the owner as it was', () => {
    const lockDir = freshLockDir();
    writeOwner(lockDir, { pid: process.pid, start: startTime(process.pid), run: 'bbbb', controller: 'x@y', controller_pid: 1, since: 1 });
    const before = readFileSync(join(lockDir, 'owner'), 'utf8');
    const r = takeLock(lockDir, 'bbbb', 0);
    expect(r.code).toBe(0);
    expect(readFileSync(join(lockDir, 'owner'), 'utf8')).toBe(before);
  });

  it('refuses a lock a live process holds once the wait is over, naming the holder', () => {
    const lockDir = freshLockDir();
    writeOwner(lockDir, { pid: process.pid, start: startTime(process.pid), run: 'cccc', controller: 'alice@ops', controller_pid: 77, since: 1 });
    const r = takeLock(lockDir, 'dddd', 0.6);
    expect(r.code).toBe(EXIT_LOCKED);
    expect(r.stdout).toMatch(/^@@lbprov-locked .*run=cccc .*controller=alice@ops controller_pid=77/m);
    expect(r.stdout).not.toContain('got-lock');
    expect(r.ms).toBeGreaterThanOrEqual(500);
    expect(owner(lockDir)['run']).toBe('cccc');
  });

  it('takes over from a holder that is gone, and from a reused pid (same pid, other start time)', async () => {
    const gone = spawn('true');
    const pid = gone.pid!;
    await new Promise((r) => gone.once('exit', r));
    for (const holder of [
      { pid, start: '1' },
      { pid: process.pid, start: String(Number(startTime(process.pid)) + 1) },
    ]) {
      const lockDir = freshLockDir();
      writeOwner(lockDir, { ...holder, run: 'eeee', controller: 'bob@ops', controller_pid: 5, since: 1 });
      const r = takeLock(lockDir, 'ffff', 2);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(owner(lockDir)['run']).toBe('ffff');
    }
  });

  it('takes a released lock at once, and its release leaves the folder for the next run', () => {
    const lockDir = freshLockDir();
    expect(takeLock(lockDir, 'hhhh', 1).code).toBe(0);
    const release = spawnSync('sh', ['-s'], { input: `${lockFunctions(lockDir)}\n${releaseLockScript(id('hhhh'))}\n`, encoding: 'utf8' });
    expect(release.status, release.stderr).toBe(0);
    expect(owner(lockDir)).toMatchObject({ pid: 'released', run: '' });
    const next = takeLock(lockDir, 'iiii', 0);
    expect(next.code, next.stdout).toBe(0);
    expect(owner(lockDir)['run']).toBe('iiii');
  });

  it('a release by another run changes nothing', () => {
    const lockDir = freshLockDir();
    writeOwner(lockDir, { pid: process.pid, start: startTime(process.pid), run: 'jjjj', controller: 'x@y', controller_pid: 1, since: 1 });
    const before = readFileSync(join(lockDir, 'owner'), 'utf8');
    spawnSync('sh', ['-s'], { input: `${lockFunctions(lockDir)}\n${releaseLockScript(id('kkkk'))}\n`, encoding: 'utf8' });
    expect(readFileSync(join(lockDir, 'owner'), 'utf8')).toBe(before);
  });

  it('claims a dead holder once: a fresh claim token of another run stops it, a token left 10 s ago does not', () => {
    const dead = { pid: 999_999_999, start: '1', run: 'llll', controller: 'x@y', controller_pid: 1, since: 1 };
    const token = (lockDir: string) => join(lockDir, `claim.${dead.pid}.${dead.start}`);
    const busy = freshLockDir();
    writeOwner(busy, dead);
    writeFileSync(token(busy), '');
    expect(takeLock(busy, 'mmmm', 0.6).code).toBe(EXIT_LOCKED);
    expect(owner(busy)['run']).toBe('llll');

    const abandoned = freshLockDir();
    writeOwner(abandoned, dead);
    writeFileSync(token(abandoned), '');
    const old = new Date(Date.now() - 20_000);
    utimesSync(token(abandoned), old, old);
    const r = takeLock(abandoned, 'nnnn', 2);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(owner(abandoned)['run']).toBe('nnnn');
  });

  it('waits for an owner-less lock (its holder may be writing its name), then takes it over', () => {
    const lockDir = freshLockDir();
    mkdirSync(lockDir, { recursive: true });
    const short = takeLock(lockDir, 'gggg', 1);
    expect(short.code).toBe(EXIT_LOCKED);
    const long = takeLock(lockDir, 'gggg', 8);
    expect(long.code, long.stderr).toBe(0);
    expect(long.ms).toBeGreaterThanOrEqual(4500);
    expect(owner(lockDir)['run']).toBe('gggg');
  });
});
