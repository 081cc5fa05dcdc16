/** Many gateways at once: bounded concurrency, one result per gateway, no gateway stops another. */
import pLimit from 'p-limit';
import type { GatewaySpec } from '../model/inventory.js';
import type { HostPlan } from '../model/plan.js';
import { LbprovError, RemoteError } from '../errors.js';

export type HostStatus = 'ok' | 'changed' | 'failed' | 'unreachable' | 'not-started';

export interface HostError {
  message: string;
  reason: string;
  stderr?: string;
}

export interface HostResult {
  gateway: string;
  status: HostStatus;
  plan?: HostPlan;
  error?: HostError;
  durationMs: number;
  /** Connection attempts that failed transiently and were tried again (absent: none). */
  connectRetries?: number;
}

export function describeError(e: unknown): HostError {
  if (e instanceof RemoteError) return { message: e.message, reason: e.reason, ...(e.context.stderr ? { stderr: e.context.stderr } : {}) };
  if (e instanceof LbprovError) return { message: e.message, reason: 'input' };
  return { message: e instanceof Error ? e.message : String(e), reason: 'internal' };
}

export function statusOfError(e: unknown): HostStatus {
  return e instanceof RemoteError && ['unreachable', 'auth', 'hostkey', 'timeout'].includes(e.reason) ? 'unreachable' : 'failed';
}

export type GatewayOutcome<T> =
  | { ok: true; gateway: GatewaySpec; value: T; durationMs: number }
  | { ok: false; gateway: GatewaySpec; error: unknown; durationMs: number };

export async function forEachGateway<T>(
  gateways: readonly GatewaySpec[],
  forks: number,
  work: (gw: GatewaySpec) => Promise<T>,
): Promise<GatewayOutcome<T>[]> {
  const limit = pLimit(Math.max(1, forks));
  return Promise.all(
    gateways.map((gateway) =>
      limit(async () => {
        const started = performance.now();
        try {
          const value = await work(gateway);
          return { ok: true as const, gateway, value, durationMs: performance.now() - started };
        } catch (error) {
          return { ok: false as const, gateway, error, durationMs: performance.now() - started };
        }
      }),
    ),
  );
}

/** A gateway's line in the recap, from how its work ended. */
export function resultOf<T>(o: GatewayOutcome<T>, okStatus: HostStatus, plan?: HostPlan): HostResult {
  const base = { gateway: o.gateway.name, durationMs: o.durationMs, ...(plan ? { plan } : {}) };
  return o.ok ? { ...base, status: okStatus } : { ...base, status: statusOfError(o.error), error: describeError(o.error) };
}

/** Anything short of ok/changed makes the run exit 1. */
export function anyFailed(results: readonly HostResult[]): boolean {
  return results.some((r) => r.status === 'failed' || r.status === 'unreachable' || r.status === 'not-started');
}
