/**
 * Rolling out over a fleet in waves, with Ansible's semantics: `--serial 1,10%,100%` sizes the
 * waves (the last size repeats until every gateway is done), `--max-fail 5%` stops the rollout
 * before the next wave when MORE than that share of a wave failed, `--forks` bounds concurrency
 * inside a wave. Gateways never reached because the rollout stopped are "not-started".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { InputError } from '../errors.js';
import { describeError, statusOfError, type HostResult } from './fleet.js';

/** One entry of `--serial`: an absolute number of gateways or a percentage of the selection. */
export type WaveSize = { kind: 'count'; value: number } | { kind: 'percent'; value: number };

/** `--max-fail`: failures a wave may have (count) or share of the wave that may fail (percent). */
export type FailThreshold = { kind: 'count'; value: number } | { kind: 'percent'; value: number };

const SIZE = /^(\d+)(%?)$/;

/** Parses `1,10%,100%`. Sizes are positive integers; percentages are integers in 1..100 (as Ansible's). */
export function parseSerial(text: string): WaveSize[] {
  const terms = text.split(',').map((t) => t.trim());
  return terms.map((term) => {
    const m = SIZE.exec(term);
    if (!m) throw new InputError('--serial', text, `"${term}" is not a number of gateways or a percentage (e.g. 1,10%,100%)`);
    const value = Number(m[1]);
    if (m[2] === '%') {
      if (value < 1 || value > 100) throw new InputError('--serial', text, `${term}: a percentage must be between 1% and 100%`);
      return { kind: 'percent' as const, value };
    }
    if (value < 1) throw new InputError('--serial', text, `${term}: a wave needs at least one gateway`);
    return { kind: 'count' as const, value };
  });
}

/** Parses `5%` (share of each wave) or `2` (gateways per wave); 0 and 0% stop at the first failure. */
export function parseMaxFail(text: string): FailThreshold {
  const m = SIZE.exec(text.trim());
  if (!m) throw new InputError('--max-fail', text, 'expected a number of gateways (2) or a percentage of a wave (5%)');
  const value = Number(m[1]);
  if (m[2] === '%') {
    if (value > 100) throw new InputError('--max-fail', text, 'a percentage must be between 0% and 100%');
    return { kind: 'percent', value };
  }
  return { kind: 'count', value };
}

/** Parses `--pause-between` seconds (fractions allowed, at most a day) into milliseconds. */
export function parsePauseBetween(text: string): number {
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds < 0 || seconds > 86_400) {
    throw new InputError('--pause-between', text, 'expected seconds between 0 and 86400');
  }
  return Math.round(seconds * 1000);
}

/** Gateways a size stands for: percentages of the whole selection round down, but never below 1. */
export function waveSizeOf(size: WaveSize, total: number): number {
  return size.kind === 'count' ? size.value : Math.max(1, Math.floor((total * size.value) / 100));
}

/**
 * Splits `items` (in order) into waves. The last size repeats until all are placed; a wave never
 * takes more than what is left. No sizes (or an empty list) means one wave with everything.
 */
export function planWaves<T>(items: readonly T[], serial: readonly WaveSize[] = []): T[][] {
  if (items.length === 0) return [];
  if (serial.length === 0) return [[...items]];
  const waves: T[][] = [];
  let next = 0;
  for (let i = 0; next < items.length; i++) {
    const size = waveSizeOf(serial[Math.min(i, serial.length - 1)]!, items.length);
    waves.push(items.slice(next, next + size));
    next += size;
  }
  return waves;
}

/**
 * Whether a wave's failures stop the rollout. With a threshold, only failures beyond it stop
 * (`5%` of 20 allows 1, stops at 2). Without one, as Ansible does, only a wave where every gateway
 * failed stops.
 */
export function waveExceeds(threshold: FailThreshold | undefined, failed: number, size: number): boolean {
  if (threshold === undefined) return size > 0 && failed === size;
  // Integer arithmetic: failed/size > value/100, without floating-point edge cases.
  return threshold.kind === 'count' ? failed > threshold.value : failed * 100 > threshold.value * size;
}

function describeThreshold(threshold: FailThreshold | undefined): string {
  if (threshold === undefined) return 'every gateway of the wave failed';
  return threshold.kind === 'count' ? `more than ${threshold.value} failed` : `more than ${threshold.value}% failed`;
}

/** Statuses that count as a failure of the wave (Ansible counts unreachable hosts too). */
export function isFailure(result: Pick<HostResult, 'status'>): boolean {
  return result.status === 'failed' || result.status === 'unreachable';
}

export interface RolloutOptions {
  serial?: readonly WaveSize[];
  maxFail?: FailThreshold;
  /** Wait between two waves (not after the last, nor after a stop). */
  pauseBetweenMs?: number;
  /** Gateways handled at once inside a wave. */
  forks: number;
  /** Aborting (Ctrl-C) starts no new gateway; those already running finish. */
  signal?: AbortSignal;
}

export interface WaveReport {
  /** From 1. */
  index: number;
  gateways: string[];
  /** Failed or unreachable gateways of this wave. */
  failed: number;
  /** Gateways of this wave that ran (the rest were never started because of an abort). */
  started: number;
  exceeded: boolean;
}

export interface RolloutStop {
  /** Wave whose failures (or the abort) stopped the rollout; later waves never started. */
  afterWave: number;
  reason: 'max-fail' | 'aborted';
  message: string;
}

export type RolloutHostResult = HostResult & { wave: number };

export interface RolloutResult {
  /** One per gateway, in the order given. */
  hosts: RolloutHostResult[];
  /** Waves that ran (a stopped rollout has fewer than planned). */
  waves: WaveReport[];
  plannedWaves: number;
  stopped: RolloutStop | null;
}

export type RolloutEvent =
  | { type: 'wave-start'; wave: number; waves: number; gateways: string[] }
  | { type: 'host-start'; gateway: string }
  | { type: 'host-done'; result: RolloutHostResult }
  | { type: 'wave-done'; report: WaveReport }
  | { type: 'pause'; ms: number }
  | { type: 'stopped'; stop: RolloutStop };

/**
 * Runs `work` once per gateway, wave by wave. `work` should return a HostResult; if it throws, the
 * error becomes the gateway's result (failed or unreachable), so one gateway never stops another.
 */
export async function runRollout<G extends { name: string }>(
  gateways: readonly G[],
  options: RolloutOptions,
  work: (gw: G) => Promise<HostResult>,
  onEvent: (event: RolloutEvent) => void = () => undefined,
): Promise<RolloutResult> {
  const waves = planWaves(gateways, options.serial);
  const results = new Map<string, RolloutHostResult>();
  const reports: WaveReport[] = [];
  const limit = pLimit(Math.max(1, options.forks));
  let stopped: RolloutStop | null = null;

  for (const [i, wave] of waves.entries()) {
    const index = i + 1;
    if (stopped) {
      for (const gw of wave) results.set(gw.name, notStarted(gw.name, index));
      continue;
    }
    onEvent({ type: 'wave-start', wave: index, waves: waves.length, gateways: wave.map((g) => g.name) });
    let started = 0;
    const done = await Promise.all(
      wave.map((gw) =>
        limit(async (): Promise<RolloutHostResult> => {
          if (options.signal?.aborted) return notStarted(gw.name, index);
          started++;
          onEvent({ type: 'host-start', gateway: gw.name });
          const t0 = performance.now();
          let result: RolloutHostResult;
          try {
            result = { ...(await work(gw)), gateway: gw.name, wave: index };
          } catch (error) {
            result = { gateway: gw.name, status: statusOfError(error), error: describeError(error), durationMs: performance.now() - t0, wave: index };
          }
          onEvent({ type: 'host-done', result });
          return result;
        }),
      ),
    );
    for (const r of done) results.set(r.gateway, r);
    const failed = done.filter(isFailure).length;
    const exceeded = waveExceeds(options.maxFail, failed, started);
    const report: WaveReport = { index, gateways: wave.map((g) => g.name), failed, started, exceeded };
    reports.push(report);
    onEvent({ type: 'wave-done', report });

    const more = index < waves.length;
    if (options.signal?.aborted) {
      stopped = { afterWave: index, reason: 'aborted', message: `aborted during wave ${index}/${waves.length}` };
    } else if (exceeded && more) {
      stopped = {
        afterWave: index,
        reason: 'max-fail',
        message: `stopped after wave ${index}/${waves.length}: ${failed} of ${started} gateway(s) failed (${describeThreshold(options.maxFail)})`,
      };
    }
    if (stopped) {
      onEvent({ type: 'stopped', stop: stopped });
    } else if (more && options.pauseBetweenMs) {
      onEvent({ type: 'pause', ms: options.pauseBetweenMs });
      await sleep(options.pauseBetweenMs, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) {
        stopped = { afterWave: index, reason: 'aborted', message: `aborted after wave ${index}/${waves.length}` };
        onEvent({ type: 'stopped', stop: stopped });
      }
    }
  }
  return { hosts: gateways.map((g) => results.get(g.name)!), waves: reports, plannedWaves: waves.length, stopped };
}

function notStarted(gateway: string, wave: number): RolloutHostResult {
  return { gateway, status: 'not-started', durationMs: 0, wave };
}
