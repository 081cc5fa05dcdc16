/** Starting, finding and stopping the lab's processes, by pid only. */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './errors.js';
import type { LabState, StartedProcess } from './state.js';

/** Fields 3 onwards of /proc/PID/stat; undefined when the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks); undefined when the process is gone. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** Running, as opposed to gone or a zombie waiting for a parent that may never reap it. */
function isAlive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z';
}

/** What `ip netns pids NS` reports, for several namespaces in one pass over /proc. */
export function pidsInNamespaces(namespaces: readonly string[]): number[] {
  const inodes = new Set<string>();
  for (const ns of namespaces) {
    try {
      inodes.add(`net:[${statSync(`/run/netns/${ns}`).ino}]`);
    } catch {
      // Namespace already gone.
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${entry}/ns/net`))) pids.push(Number(entry));
    } catch {
      // Exited meanwhile, or a kernel thread.
    }
  }
  return pids;
}

/** Recorded processes that still run and are still the ones we started. */
export function stillOurs(processes: readonly StartedProcess[]): number[] {
  return processes.filter((started) => processStartTime(started.pid) === started.startTime).map((started) => started.pid);
}

/** SIGTERM, then SIGKILL what is left after `graceMs`. */
export async function terminate(pids: readonly number[], graceMs = 2_000): Promise<void> {
  const signal = (pid: number, name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name);
    } catch {
      // Already gone.
    }
  };
  const targets = [...new Set(pids)].filter((pid) => pid !== process.pid);
  targets.forEach((pid) => signal(pid, 'SIGTERM'));
  const deadline = Date.now() + graceMs;
  while (targets.some(isAlive) && Date.now() < deadline) await sleep(20);
  targets.filter(isAlive).forEach((pid) => signal(pid, 'SIGKILL'));
  const killDeadline = Date.now() + 2_000;
  while (targets.some(isAlive) && Date.now() < killDeadline) await sleep(20);
}

export interface Daemon {
  started: StartedProcess;
  /** undefined while it runs; its exit code once it exited (null: killed by a signal). */
  exitCode(): number | null | undefined;
}

/**
 * Starts a long-running program (argv execs into it, so the pid is the program's own) with its
 * output appended to logFile. The caller records `started` in the lab state at once.
 */
export function startDaemon(argv: readonly string[], logFile: string, role: string): Daemon {
  const [file, ...args] = argv;
  if (file === undefined) throw new LabError(`${role}: empty command`);
  const log = openSync(logFile, 'a');
  let child;
  try {
    child = spawn(file, args, { detached: true, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new LabError(`cannot start ${role} (${argv.join(' ')})`);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.unref();
  return { started: { pid, startTime: processStartTime(pid) ?? '', role }, exitCode: () => exited };
}

/** Stops the lab's recorded processes of this role (by pid) and drops them from its state. */
export async function stopRole(state: LabState, role: string): Promise<void> {
  await terminate(stillOurs(state.processes.filter((started) => started.role === role)));
  state.processes = state.processes.filter((started) => started.role !== role);
}
