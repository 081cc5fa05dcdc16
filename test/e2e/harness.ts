/**
 * Shared by the end-to-end tests: a lab per test file, the CLI as a real
 * process, and the gateway's state read straight from its namespace.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLab, type Lab, type LabOptions } from '../../src/lab/index.js';
import { execFile, spawn } from 'node:child_process';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a real process; never throws on a non-zero exit. */
export function runCli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<RunResult> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 120_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
    // A CLI that exits before reading its stdin makes the end() fail with EPIPE: the exit code tells the story.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end();
  });
}

/**
 * Runs `command` on a real pseudo-terminal (script(1)), typing `answer` once when `prompt` shows;
 * never throws (a child that goes away early only ends the output) and never leaves the child behind.
 */
export function runOnTerminal(command: string, prompt: string, answer: string, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let answered = false;
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!answered && out.includes(prompt)) {
        answered = true;
        child.stdin.write(answer);
      }
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', () => undefined);
    child.on('close', (code) => {
      clearTimeout(guard);
      done({ code, out });
    });
  });
}

export const isRoot = process.getuid?.() === 0;
/** Outside CI a non-root run skips; with CI=true a lab that cannot be built fails the suite. */
export const skipLab = !isRoot && process.env.CI !== 'true';
export const CLI = resolve(import.meta.dirname, '../../dist/lbprov.mjs');

export interface LabRun {
  lab: Lab;
  /** Working folder of the CLI runs (holds the trace files). */
  work: string;
  cli(args: string[], env?: Record<string, string>): Promise<RunResult>;
  /** Commands the CLI sent to the gateway(s) during `args`, from LBPROV_TRACE. */
  traced(args: string[]): Promise<{ result: RunResult; commands: { host: string; command: string; mutating: boolean }[] }>;
  gw(argv: string[]): Promise<string>;
  destroy(): Promise<void>;
}

export async function startLab(options: LabOptions = {}): Promise<LabRun> {
  const work = mkdtempSync(join(tmpdir(), 'lbprov-e2e-'));
  const lab = await createLab({ dir: join(work, 'lab'), inventoryPath: join(work, 'inventory.yml'), ...options });
  const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, env, work);
  let traces = 0;
  return {
    lab,
    work,
    cli,
    async traced(args) {
      const file = join(work, `trace-${++traces}.jsonl`);
      const result = await cli(args, { LBPROV_TRACE: file });
      let commands: { host: string; command: string; mutating: boolean }[] = [];
      try {
        commands = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      } catch {
        commands = [];
      }
      return { result, commands };
    },
    async gw(argv) {
      return (await lab.execOnGateway(0, argv)).stdout;
    },
    async destroy() {
      await lab.destroy();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** iptables-save without comments and counters, the lines lbprov owns removed. */
export function foreignLines(save: string): string[] {
  return save
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/\s\[\d+:\d+\]$/, ' [0:0]'))
    .filter((l) => !/LBPROV_/.test(l));
}
