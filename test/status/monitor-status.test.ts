import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { buildStatusScript, parseStatusOutput } from '../../src/status/monitor-status.js';
import { formatGatewayStatus } from '../../src/status/format.js';
import { plainColours } from '../../src/report/plan-text.js';
import type { GatewaySpec } from '../../src/model/inventory.js';
import { gatewaySpec } from '../helpers/gateway.js';

function gateway(): GatewaySpec {
  const gw = gatewaySpec([3, 1]);
  return { ...gw, links: gw.links.map((l) => ({ ...l, monitor: { intervalS: 2, timeoutS: 1, reliability: 1, down: 3, up: 3, latencyMs: null, lossPct: null, window: 10, flap: null } })) };
}

const section = (marker: string, name: string, lines: string[]) => [`@@${marker} begin ${name}`, ...lines, '', `@@${marker} end ${name} 0`];
const output = (marker: string, state: string[], service: string[], counts: string[], audit: string[] = []) =>
  [...section(marker, 'state', state), ...section(marker, 'service', service), ...section(marker, 'conntrack', counts), ...section(marker, 'sticky', []), ...section(marker, 'audit', audit), ...section(marker, 'events', ['from=file', 'line=2026-12-02T01:00:00+0000 link isp1 down: 3 failed rounds in a row\u001b[31m']), `@@${marker} done`, ''].join('\n');

describe('parseStatusOutput', () => {
  it('keeps well-formed audit records and drops crafted ones', () => {
    const good = JSON.stringify({ time: '2026-11-26T22:00:00Z', from: '192.0.2.0', result: 'confirmed', record: { run: 'abc123', by: 'root@ctl', changes: ['create a', 'update b'] } });
    const crafted = JSON.stringify({ time: '2026\n-A PREROUTING', result: 'applied', record: {} });
    const s = parseStatusOutput(gateway(), output('m9', [], ['deployed=1', 'running=0'], [], [good, crafted, 'not json']), 'm9');
    expect(s.audit).toEqual([{ time: '2026-11-26T22:00:00Z', result: 'confirmed', by: 'root@ctl', from: '192.0.2.0', run: 'abc123', changes: 2 }]);
  });

  const state = [
    'mechanism=chain-swap',
    'all_down=0',
    'balanced=isp2',
    'updated=1700000100',
    'link.isp1=down',
    'link.isp1.since=1700000050',
    'link.isp1.last=0/1 fail',
    'link.isp2=up',
    'link.isp2.since=1699990000',
    'link.isp2.last=1/1 ok 3ms',
    'link.isp1.ready=1',
    'link.isp1.address=203.0.113.2',
    'link.isp1.nexthop=198.51.100.1',
    'link.isp1.source=dhcp-lease',
    'link.isp2.ready=0',
    'link.isp2.address=$(reboot)',
    'link.isp2.reason=interface wan2 does not exist',
    'link.isp1.in_pool=0',
    'link.isp1.rtt_us=3400',
    'link.isp1.jitter_us=250',
    'link.isp1.loss_pm=125',
    'link.isp1.transitions=3',
    'link.isp1.changes=1699990000 1700000040 1700000050',
    'link.isp1.held_until=1700000350',
    'link.isp1.why=flapping: 4 changes in 10 min, held down for 300s (up: 3 good rounds in a row)',
  ];

  it('reads per-link health, last probe, mark and tracked connections of a running monitor', () => {
    const s = parseStatusOutput(
      gateway(),
      output('m1', state, ['pid=4242', 'running=1', 'worker_pid=4243', 'worker_running=1', 'revision=abcdef0123456789', 'deployed=1', 'now=1700000101'], ['isp1=0', 'isp2=17']),
      'm1',
    );
    expect(s).toMatchObject({ deployed: true, running: true, pid: 4242, workerPid: 4243, revision: 'abcdef0123456789', mechanism: 'chain-swap', allDown: false, balanced: ['isp2'], age: 1, errors: [], warnings: [] });
    expect(s.links[0]).toMatchObject({ inPool: false, rttMs: 3.4, jitterMs: 0.25, lossPct: 12.5, transitions: 3, transitionsLastHour: 2, heldUntil: 1700000350 });
    expect(s.links[1]).toMatchObject({ inPool: null, rttMs: null, lossPct: null, transitionsLastHour: 0, heldUntil: null, why: '' });
    expect(s.links.map(({ inPool: _a, rttMs: _b, jitterMs: _c, lossPct: _d, transitions: _e, transitionsLastHour: _f, heldUntil: _g, why: _h, ...rest }) => rest)).toEqual([
      { name: 'isp1', interface: 'wan1', kind: 'static', ready: true, reason: '', address: '203.0.113.2', nextHop: '198.51.100.1', nextHopSource: 'dhcp-lease', tier: 1, stickySources: null, state: 'down', since: 1700000050, last: '0/1 fail', mark: '0x10000000', connections: 0 },
      { name: 'isp2', interface: 'wan2', kind: 'static', ready: false, reason: 'interface wan2 does not exist', address: null, nextHop: null, nextHopSource: null, tier: 1, stickySources: null, state: 'up', since: 1699990000, last: '1/1 ok 3ms', mark: '0x20000000', connections: 17 },
    ]);
    const text = formatGatewayStatus(s, plainColours, 1700000110);
    expect(text).toContain('gw-a1: monitor running (pid 4242, worker 4243), chain-swap, balancing over isp2');
    expect(text).toMatch(/isp1 {2}down {6}since 2023-11-14T22:14:10Z \(60s ago\) {2}last 0\/1 fail {2}mark 0x10000000 {2}0 connections/);
    expect(text).toContain('wan1 203.0.113.2 via 198.51.100.1 (DHCP lease)');
    expect(text).toContain('wan2: not ready: interface wan2 does not exist');
    expect(s).toMatchObject({ eventsFrom: 'file', restarts: null, events: ['2026-12-02T01:00:00+0000 link isp1 down: 3 failed rounds in a row [31m'] });
    expect(text).toContain('last events (/var/log/lbprov/monitor.log):');
    expect(text).toContain('rtt 3.4 ms (jitter 0.3 ms), loss 12.5 %, 2 changes in the last hour, held down by flap damping for 240s more, last change: flapping:');
  });

  it('reports a deployed monitor that is not running as an error', () => {
    const s = parseStatusOutput(gateway(), output('m2', state, ['pid=4242', 'running=0', 'worker_pid=', 'worker_running=0', 'revision=abc', 'deployed=1', 'now=1700000300'], ['isp1=', 'isp2=']), 'm2');
    expect(s.errors).toEqual(['the monitor is deployed but not running (pid 4242 is gone)']);
    expect(s.links.map((l) => l.connections)).toEqual([null, null]);
    expect(formatGatewayStatus(s, plainColours)).toContain('error: the monitor is deployed but not running (pid 4242 is gone)');
  });

  it('warns about a state file that stopped moving while the monitor runs', () => {
    const s = parseStatusOutput(gateway(), output('m3', state, ['pid=1', 'running=1', 'deployed=1', 'now=1700000200'], []), 'm3');
    expect(s.errors).toEqual([]);
    expect(s.warnings).toEqual(["the monitor's state is 100s old (expected a write every 6s at most)"]);
  });

  it('refuses truncated output rather than reporting a stopped monitor', () => {
    const full = output('m4', state, ['running=1', 'deployed=1'], ['isp1=0']);
    expect(() => parseStatusOutput(gateway(), full.slice(0, full.indexOf('@@m4 begin conntrack')), 'm4')).toThrow(/truncated/);
  });
});

describe('the status script', () => {
  it('runs under sh (private mount and network namespace: empty /run, no connections)', () => {
    const { script, marker } = buildStatusScript(gateway());
    let stdout: string;
    try {
      stdout = execFileSync('unshare', ['--mount', '--net', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs lbprov-status-test /run && exec sh -s'], { input: script, encoding: 'utf8' });
    } catch (e) {
      if (process.env.CI === 'true' || process.getuid?.() === 0) throw e;
      return; // needs root for namespaces
    }
    const s = parseStatusOutput(gateway(), stdout, marker);
    expect(s).toMatchObject({ deployed: false, running: false, pid: null, mechanism: null, errors: [], warnings: ['no monitor deployed (run lbprov up)'] });
    expect(s.links.map((l) => l.connections)).toEqual([0, 0]);
  });
});
