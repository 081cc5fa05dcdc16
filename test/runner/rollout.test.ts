import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InputError, RemoteError } from '../../src/errors.js';
import type { HostResult, HostStatus } from '../../src/runner/fleet.js';
import {
  parseMaxFail,
  parsePauseBetween,
  parseSerial,
  planWaves,
  runRollout,
  waveExceeds,
  waveSizeOf,
  type RolloutEvent,
  type WaveSize,
} from '../../src/runner/rollout.js';

const names = (n: number) => Array.from({ length: n }, (_, i) => `gw${i + 1}`);
const sizes = (n: number, serial: string) => planWaves(names(n), parseSerial(serial)).map((w) => w.length);

describe('parseSerial', () => {
  it('reads counts and percentages in order', () => {
    expect(parseSerial('1, 10%,100%')).toEqual([
      { kind: 'count', value: 1 },
      { kind: 'percent', value: 10 },
      { kind: 'percent', value: 100 },
    ]);
  });
  it.each(['', '0', '0%', '101%', '1.5', '-1', '10%%', 'a', '1,,2', '5 %'])('rejects %j with an InputError naming the flag', (text) => {
    expect(() => parseSerial(text)).toThrow(InputError);
    expect(() => parseSerial(text)).toThrow(/--serial/);
  });
});

describe('parseMaxFail', () => {
  it('reads a percentage or a count, 0 included', () => {
    expect(parseMaxFail('5%')).toEqual({ kind: 'percent', value: 5 });
    expect(parseMaxFail('0%')).toEqual({ kind: 'percent', value: 0 });
    expect(parseMaxFail('3')).toEqual({ kind: 'count', value: 3 });
  });
  it.each(['', '101%', '-1', '1.5', 'x'])('rejects %j', (text) => {
    expect(() => parseMaxFail(text)).toThrow(/--max-fail/);
  });
});

describe('parsePauseBetween', () => {
  it('reads seconds into milliseconds and rejects the rest', () => {
    expect(parsePauseBetween('30')).toBe(30_000);
    expect(parsePauseBetween('0.25')).toBe(250);
    for (const bad of ['', '-1', 'x', '86401', 'Infinity']) expect(() => parsePauseBetween(bad)).toThrow(/--pause-between/);
  });
});

describe('planWaves (Ansible serial semantics)', () => {
  it('canary, then 10%, then the rest: the last size repeats', () => {
    expect(sizes(100, '1,10%,100%')).toEqual([1, 10, 89]);
    expect(sizes(10, '1,50%,100%')).toEqual([1, 5, 4]);
    expect(sizes(10, '3')).toEqual([3, 3, 3, 1]);
    expect(sizes(7, '1,2')).toEqual([1, 2, 2, 2]);
  });
  it('percentages round down but never below one gateway', () => {
    expect(sizes(19, '10%')).toEqual(Array(19).fill(1));
    expect(sizes(25, '10%')).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
    expect(sizes(3, '50%')).toEqual([1, 1, 1]);
  });
  it('a size larger than what is left takes what is left; no serial is one wave', () => {
    expect(sizes(4, '1,100')).toEqual([1, 3]);
    expect(planWaves(names(4))).toEqual([names(4)]);
    expect(planWaves([], parseSerial('1'))).toEqual([]);
  });
  it('keeps every gateway exactly once, in order, with each wave sized by its serial entry', () => {
    const size = fc.oneof(
      fc.integer({ min: 1, max: 40 }).map((value): WaveSize => ({ kind: 'count', value })),
      fc.integer({ min: 1, max: 100 }).map((value): WaveSize => ({ kind: 'percent', value })),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.array(size, { minLength: 1, maxLength: 5 }), (n, serial) => {
        const items = names(n);
        const waves = planWaves(items, serial);
        expect(waves.flat()).toEqual(items);
        waves.forEach((wave, i) => {
          const want = waveSizeOf(serial[Math.min(i, serial.length - 1)]!, n);
          expect(want).toBeGreaterThanOrEqual(1);
          if (i < waves.length - 1) expect(wave.length).toBe(want);
          else expect(wave.length).toBeLessThanOrEqual(want);
        });
      }),
    );
  });
});

describe('waveExceeds (max_fail_percentage must be exceeded)', () => {
  it('percent: stops only above the share', () => {
    const fivePct = parseMaxFail('5%');
    expect(waveExceeds(fivePct, 1, 20)).toBe(false); // exactly 5%
    expect(waveExceeds(fivePct, 2, 20)).toBe(true);
    expect(waveExceeds(fivePct, 1, 19)).toBe(true); // 5.3%
    expect(waveExceeds(parseMaxFail('10%'), 1, 10)).toBe(false);
    expect(waveExceeds(parseMaxFail('10%'), 1, 5)).toBe(true);
    expect(waveExceeds(parseMaxFail('0%'), 1, 500)).toBe(true);
    expect(waveExceeds(parseMaxFail('0%'), 0, 500)).toBe(false);
    expect(waveExceeds(parseMaxFail('100%'), 5, 5)).toBe(false);
  });
  it('percent matches exact rational comparison for all small waves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 100 }), fc.nat(), (size, pct, f) => {
        const failed = f % (size + 1);
        expect(waveExceeds({ kind: 'percent', value: pct }, failed, size)).toBe(failed * 100 > pct * size);
      }),
    );
  });
  it('count: more than N failures stop', () => {
    expect(waveExceeds(parseMaxFail('2'), 2, 10)).toBe(false);
    expect(waveExceeds(parseMaxFail('2'), 3, 10)).toBe(true);
    expect(waveExceeds(parseMaxFail('0'), 1, 10)).toBe(true);
  });
  it('without a threshold only a wave where everything failed stops', () => {
    expect(waveExceeds(undefined, 4, 5)).toBe(false);
    expect(waveExceeds(undefined, 5, 5)).toBe(true);
    expect(waveExceeds(undefined, 0, 0)).toBe(false);
  });
});

/** A work function whose outcome per gateway is given; records concurrency and start order. */
function scripted(outcomes: Record<string, HostStatus | 'throw-unreachable' | 'throw'>, delayMs = 5) {
  let running = 0;
  const seen = { maxRunning: 0, started: [] as string[] };
  const work = async (gw: { name: string }): Promise<HostResult> => {
    running++;
    seen.maxRunning = Math.max(seen.maxRunning, running);
    seen.started.push(gw.name);
    await new Promise((r) => setTimeout(r, delayMs));
    running--;
    const outcome = outcomes[gw.name] ?? 'changed';
    if (outcome === 'throw-unreachable') throw new RemoteError('connect ECONNREFUSED', { host: gw.name }, 'unreachable');
    if (outcome === 'throw') throw new Error('boom');
    return { gateway: gw.name, status: outcome, durationMs: delayMs, ...(outcome === 'failed' ? { error: { message: 'apply failed', reason: 'apply' } } : {}) };
  };
  return { work, seen };
}
const gws = (n: number) => names(n).map((name) => ({ name }));

describe('runRollout', () => {
  it('runs every wave when failures stay within --max-fail', async () => {
    const { work, seen } = scripted({ gw3: 'failed', gw8: 'throw-unreachable' });
    const r = await runRollout(gws(10), { serial: parseSerial('1,50%,100%'), maxFail: parseMaxFail('50%'), forks: 3 }, work);
    expect(r.stopped).toBeNull();
    expect(r.waves.map((w) => [w.gateways.length, w.failed, w.exceeded])).toEqual([
      [1, 0, false],
      [5, 1, false],
      [4, 1, false],
    ]);
    expect(seen.started).toHaveLength(10);
    expect(r.hosts.map((h) => h.status)).toEqual(['changed', 'changed', 'failed', 'changed', 'changed', 'changed', 'changed', 'unreachable', 'changed', 'changed']);
    expect(r.hosts[7]!.error?.reason).toBe('unreachable');
    expect(r.hosts.map((h) => h.wave)).toEqual([1, 2, 2, 2, 2, 2, 3, 3, 3, 3]);
  });

  it('stops before the next wave when more than --max-fail failed; the rest are not-started', async () => {
    const { work, seen } = scripted({ gw3: 'throw-unreachable', gw5: 'failed', gw8: 'throw-unreachable' });
    const r = await runRollout(gws(10), { serial: parseSerial('1,50%,100%'), maxFail: parseMaxFail('10%'), forks: 20 }, work);
    expect(r.stopped).toMatchObject({ afterWave: 2, reason: 'max-fail' });
    expect(r.stopped!.message).toContain('2 of 5');
    expect(seen.started.sort()).toEqual(['gw1', 'gw2', 'gw3', 'gw4', 'gw5', 'gw6']);
    expect(r.hosts.map((h) => `${h.gateway}:${h.status}`)).toEqual([
      'gw1:changed', 'gw2:changed', 'gw3:unreachable', 'gw4:changed', 'gw5:failed', 'gw6:changed',
      'gw7:not-started', 'gw8:not-started', 'gw9:not-started', 'gw10:not-started',
    ]);
    expect(r.waves).toHaveLength(2);
  });

  it('a failed canary stops everything after it', async () => {
    const { work } = scripted({ gw1: 'throw' });
    const r = await runRollout(gws(5), { serial: parseSerial('1,100%'), maxFail: parseMaxFail('0%'), forks: 5 }, work);
    expect(r.hosts.map((h) => h.status)).toEqual(['failed', 'not-started', 'not-started', 'not-started', 'not-started']);
    expect(r.hosts[0]!.error).toMatchObject({ reason: 'internal', message: 'boom' });
  });

  it('failures in the last wave are reported but stop nothing', async () => {
    const { work } = scripted({ gw2: 'failed' });
    const r = await runRollout(gws(2), { serial: parseSerial('1'), maxFail: parseMaxFail('0'), forks: 1 }, work);
    expect(r.waves[1]!.exceeded).toBe(true);
    expect(r.stopped).toBeNull();
  });

  it('never runs more than --forks at once, nor starts a wave before the previous ends', async () => {
    const { work, seen } = scripted({}, 10);
    const events: RolloutEvent[] = [];
    await runRollout(gws(12), { serial: parseSerial('2,100%'), forks: 4 }, work, (e) => events.push(e));
    expect(seen.maxRunning).toBe(4);
    const order = events.map((e) => (e.type === 'host-start' ? `start:${e.gateway}` : e.type === 'wave-start' ? `wave:${e.wave}/${e.waves}` : e.type));
    expect(order.slice(0, 6)).toEqual(['wave:1/2', 'start:gw1', 'start:gw2', 'host-done', 'host-done', 'wave-done']);
    expect(order[6]).toBe('wave:2/2');
    expect(order.filter((o) => o.startsWith('start:'))).toHaveLength(12);
  });

  it('pauses between waves, not after the last one', async () => {
    const { work } = scripted({}, 1);
    const events: RolloutEvent[] = [];
    const t0 = performance.now();
    await runRollout(gws(3), { serial: parseSerial('1'), forks: 1, pauseBetweenMs: 40 }, work, (e) => events.push(e));
    expect(events.filter((e) => e.type === 'pause')).toHaveLength(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(75);
    expect(events.at(-1)?.type).toBe('wave-done');
  });

  it('an abort starts no new gateway and stops after the current wave', async () => {
    const controller = new AbortController();
    const { work, seen } = scripted({}, 10);
    const r = await runRollout(gws(6), { serial: parseSerial('3'), forks: 1, signal: controller.signal }, async (gw) => {
      if (gw.name === 'gw2') controller.abort();
      return work(gw);
    });
    expect(seen.started).toEqual(['gw1', 'gw2']);
    expect(r.stopped).toMatchObject({ afterWave: 1, reason: 'aborted' });
    expect(r.hosts.map((h) => h.status)).toEqual(['changed', 'changed', 'not-started', 'not-started', 'not-started', 'not-started']);
    expect(r.waves[0]!.started).toBe(2);
  });
});
