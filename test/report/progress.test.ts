import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { FleetProgress, progressMode, truncate } from '../../src/report/progress.js';
import { parseMaxFail, parseSerial, runRollout } from '../../src/runner/rollout.js';
import type { HostResult } from '../../src/runner/fleet.js';

/** A stderr stand-in that records what was written. */
function sink(tty: boolean, columns = 120) {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: tty, columns, cursorTo: () => true, moveCursor: () => true, clearLine: () => true });
  return { stream, text: () => chunks.join('') };
}

const result = (gateway: string, status: HostResult['status'], message?: string): HostResult => ({
  gateway,
  status,
  durationMs: 1500,
  ...(message ? { error: { message, reason: 'apply' } } : {}),
});

describe('progressMode', () => {
  it('is silent with --json, live on a terminal outside CI, lines otherwise', () => {
    expect(progressMode(sink(true).stream, true, {})).toBe('silent');
    expect(progressMode(sink(true).stream, false, {})).toBe('live');
    expect(progressMode(sink(true).stream, false, { CI: 'true' })).toBe('lines');
    expect(progressMode(sink(true).stream, false, { TERM: 'dumb' })).toBe('lines');
    expect(progressMode(sink(false).stream, false, {})).toBe('lines');
  });
});

describe('FleetProgress status line', () => {
  it('counts outcomes and names the three longest-running gateways with their elapsed seconds', async () => {
    let now = 0;
    const p = await new FleetProgress({ mode: 'silent', now: () => now }).start(500);
    p.wave(2, 3, ['a', 'b']);
    for (const name of ['gw-1', 'gw-2', 'gw-3', 'gw-4', 'gw-5']) {
      p.hostStarted(name);
      now += 2000;
    }
    p.hostDone(result('gw-2', 'changed'));
    p.hostDone(result('gw-4', 'failed', 'boom'));
    p.hostDone(result('gw-9', 'ok'));
    now += 500;
    expect(p.statusText()).toBe('wave 2/3 · 3/500 done · 1 ok · 1 changed · 1 failed, 0 unreachable · running 3, slowest: gw-1 10s, gw-3 6s, gw-5 2s');
  });

  it('stays one line: truncate cuts to the width', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
    expect(truncate('\u001b[31mabcdef\u001b[39m', 4)).toBe('abc…');
  });
});

describe('FleetProgress output', () => {
  async function rollout(p: FleetProgress) {
    const outcome: Record<string, HostResult['status']> = { gw2: 'failed', gw3: 'unreachable' };
    await p.start(4);
    const r = await runRollout(
      ['gw1', 'gw2', 'gw3', 'gw4'].map((name) => ({ name })),
      { serial: parseSerial('1,2'), maxFail: parseMaxFail('0'), forks: 2 },
      async (gw) => result(gw.name, outcome[gw.name] ?? 'changed', outcome[gw.name] ? `${gw.name} broke` : undefined),
      (e) => p.handle(e),
    );
    p.stop();
    return r;
  }

  it('lines mode: one line per wave and per finished gateway, no spinner or escape codes', async () => {
    const out = sink(false);
    await rollout(new FleetProgress({ stream: out.stream, mode: 'lines' }));
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toEqual([
      'wave 1/3: 1 gateway(s)',
      '[1/4] gw1 changed (1.5 s)',
      'wave 2/3: 2 gateway(s)',
      expect.stringMatching(/^\[2\/4\] gw[23] /),
      expect.stringMatching(/^\[3\/4\] gw[23] /),
      'stopped after wave 2/3: 2 of 2 gateway(s) failed (more than 0 failed)',
    ]);
    expect(lines).toContain('[2/4] gw2 failed (1.5 s): gw2 broke');
    expect(out.text()).not.toMatch(/\u001b/);
  });

  it('silent mode (--json) writes nothing', async () => {
    const out = sink(true);
    await rollout(new FleetProgress({ stream: out.stream, json: true }));
    expect(out.text()).toBe('');
  });

  it('live mode prints failures as lines of their own, successes only in the status line', async () => {
    const out = sink(true);
    await rollout(new FleetProgress({ stream: out.stream, mode: 'live' }));
    const text = out.text().replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
    expect(text).toContain('gw2 failed (1.5 s): gw2 broke\n');
    expect(text).toContain('gw3 unreachable (1.5 s): gw3 broke\n');
    expect(text).not.toContain('gw1 changed (1.5 s)');
    expect(text).toContain('wave 2/3: 2 gateway(s)\n');
  });
});
