/**
 * A throwaway network namespace for tests that run the real nft or iptables: a unique name per
 * call, removed afterwards whatever happened. Root only; outside CI a non-root run skips them,
 * with CI=true they fail instead.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const canUseNetns = process.getuid?.() === 0;
export const skipNetns = !canUseNetns && process.env.CI !== 'true';

export interface Netns {
  name: string;
  /** Runs argv in the namespace; throws with its stderr on a non-zero exit. */
  run(argv: string[], input?: string): string;
  /** Like run, but returns the exit status and output instead of throwing. */
  attempt(argv: string[], input?: string): { status: number; stdout: string; stderr: string };
}

export async function withNetns<T>(work: (ns: Netns) => T | Promise<T>): Promise<T> {
  const name = `lbt${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  const exec = (argv: string[], input?: string) => execFileSync('ip', ['netns', 'exec', name, ...argv], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  try {
    return await work({
      name,
      run: exec,
      attempt(argv, input) {
        try {
          return { status: 0, stdout: exec(argv, input), stderr: '' };
        } catch (e) {
          const err = e as { status?: number; stdout?: string; stderr?: string };
          return { status: err.status ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
        }
      },
    });
  } finally {
    execFileSync('ip', ['netns', 'del', name]);
  }
}
