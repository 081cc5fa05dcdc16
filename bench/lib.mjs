/** What the benchmarks share: where lbprov is, a command timed by GNU time, and the CPU time a lab's gateways spent. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
/** The built CLI (npm run build). */
export const CLI = join(ROOT, 'dist/lbprov.mjs');

/** Bounds one command: Ansible at 100 gateways takes minutes, never this long when healthy. */
const COMMAND_TIMEOUT_MS = 15 * 60_000;

/** Runs a command under GNU time (time files go to `work`); never throws on a non-zero exit. */
export function timed(work, argv, { env = {}, cwd } = {}) {
  const timeFile = join(work, `time-${process.hrtime.bigint()}`);
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, ...argv], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), COMMAND_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      const [user, sys, maxRssKiB] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
      done({ code, wallMs, cpuMs: (user + sys) * 1000, maxRssKiB, stdout, stderr });
    });
  });
}

/**
 * CPU time the lab's gateways spent so far, in ms: each gateway's sshd reaps its connections,
 * which reap the shell and every command it ran, so finished work adds up in the sshd's cutime
 * and cstime; connections still open (Ansible's ControlPersist) count with their own times.
 */
export function gatewayCpuMs(lab) {
  const ticks = 100; // USER_HZ on Linux
  const masters = new Set(lab.state.processes.filter((p) => p.role.startsWith('sshd ')).map((p) => p.pid));
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fields;
    try {
      fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
    } catch {
      continue; // exited meanwhile
    }
    const [ppid, utime, stime, cutime, cstime] = [fields[1], fields[11], fields[12], fields[13], fields[14]].map(Number);
    if (masters.has(Number(entry))) sum += cutime + cstime;
    else if (masters.has(ppid)) sum += utime + stime + cutime + cstime;
  }
  return (sum * 1000) / ticks;
}

