import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { renderDesiredState, resourcesFromText } from '../../src/render/desired.js';
import { ownedRanges } from '../../src/model/ownership.js';
import type { GatewaySpec } from '../../src/model/inventory.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { IptablesChainResource } from '../../src/model/resources.js';
import { ofKind } from '../../src/model/resources.js';
import { iptablesBackend } from '../../src/firewall/iptables/index.js';
import { factsFor } from '../helpers/gateway.js';
import { alive, EPOCH, MonitorSandbox, monitoredGateway, playbook, templates, waitFor } from './harness.js';

const sandboxes: MonitorSandbox[] = [];
function sandbox(...args: ConstructorParameters<typeof MonitorSandbox>): MonitorSandbox {
  const s = new MonitorSandbox(...args);
  sandboxes.push(s);
  return s;
}

afterEach(async () => {
  for (const s of sandboxes.splice(0)) await s.remove();
});

/** The wall-clock second the monitor records for an uptime (the sandbox starts at 1000 s, EPOCH). */
const wall = (uptime: number) => String(EPOCH - 1000 + Math.floor(uptime));

/** LBPROV_BALANCE as `up` renders it when the monitor reports `down` links down. */
function renderedBalance(gw: GatewaySpec, down: string[]): string[] {
  const health = Object.fromEntries(down.map((name) => [`link.${name}`, 'down']));
  const chain = renderDesiredState(gw, playbook, templates, factsFor(gw, health)).find((r) => r.id === 'ipv4/iptables-chain:mangle:LBPROV_BALANCE') as IptablesChainResource;
  return chain.rules;
}

/** The LBPROV_BALANCE rules an iptables-restore payload sets, canonicalised like the diff does. */
function payloadBalance(payload: string, gw: GatewaySpec): string[] {
  const resources = resourcesFromText({ type: 'firewall', backend: 'iptables', table: 'mangle', template: 'payload' }, payload, 'payload', ownedRanges(gw), iptablesBackend);
  expect(resources.map((r) => r.id)).toEqual(['ipv4/iptables-chain:mangle:LBPROV_BALANCE']);
  return (resources[0] as IptablesChainResource).rules;
}

/** What a plan renders for the link tables and the rules from a link's address, from the same facts. */
function renderedRouting(gw: GatewaySpec, facts: HostFacts): { tables: Record<number, string>; sources: Record<number, string> } {
  const desired = renderDesiredState(gw, playbook, templates, facts);
  const tables = Object.fromEntries(ofKind(desired, 'route-table').map((t) => [t.table, t.routes.join('; ')]));
  const sources = Object.fromEntries(ofKind(desired, 'ip-rule').filter((r) => / lookup \d+$/.test(r.selector) && !r.selector.startsWith('from all')).map((r) => [r.priority, r.selector.split(' ')[1]!]));
  return { tables, sources };
}

function kernelRouting(s: MonitorSandbox, gw: GatewaySpec): { tables: Record<number, string>; sources: Record<number, string> } {
  const tables: Record<number, string> = {};
  for (const t of [...gw.links.map((_, i) => 101 + i), 116]) if (s.tableRoute(t)) tables[t] = s.tableRoute(t);
  const sources: Record<number, string> = {};
  for (const p of gw.links.map((_, i) => 111 + i)) if (s.ruleFrom(p)) sources[p] = s.ruleFrom(p);
  return { tables, sources };
}

/** The first link learns its next hop by DHCP and probes the router it learns. */
function dhcpGateway(): GatewaySpec {
  const gw = monitoredGateway([3, 1], { down: 3, up: 2 });
  return { ...gw, links: [{ ...gw.links[0]!, nextHop: { kind: 'dhcp' }, probes: [] }, gw.links[1]!] };
}

describe('monitor.sh run: links, as the kernel shows them', () => {
  it('fills each table and source rule from the kernel, as a plan renders them from the same facts', async () => {
    const gw = monitoredGateway([3, 1]);
    const s = sandbox(gw);
    await s.start();
    expect(kernelRouting(s, gw)).toEqual(renderedRouting(gw, factsFor(gw)));
    expect(s.tableRoute(101)).toBe('default via 203.0.113.1 dev wan1');
    expect(s.tableRoute(116)).toBe('default via 203.0.113.1 dev wan1');
    expect(s.ruleFrom(112)).toBe('203.0.113.10');
    // One long-lived ping per target, from the link's own address.
    expect(s.pings()).toEqual(['-n -O -i 1 -I 203.0.113.2 198.51.100.1', '-n -O -i 1 -I 203.0.113.10 198.51.100.9']);
  });

  it('takes a link whose interface disappears out at once, and back after `up` good rounds when it returns', async () => {
    const gw = monitoredGateway([3, 1], { down: 3, up: 2 });
    const s = sandbox(gw);
    await s.start();
    s.setKernel([{ name: 'wan1', index: 2, address: '203.0.113.2', prefixLength: 29 }], [{ via: '203.0.113.1', dev: 'wan1' }]);
    let state = await s.kernelEvent();
    expect(state).toMatchObject({ 'link.isp2': 'down', 'link.isp2.ready': '0', 'link.isp2.reason': 'interface wan2 does not exist', balanced: 'isp1' });
    expect(s.tableRoute(102)).toBe('unreachable default');
    expect(s.ruleFrom(112)).toBe('');
    expect(payloadBalance(s.swaps().at(-1)!.payload, gw)).toEqual(renderedBalance(gw, ['isp2']));
    expect(s.conntrack().map((c) => c.split(' ').slice(1).join(' '))).toEqual(['-D -m 0x20000000/0xf0000000']);

    // Back with a new address (a new session): routing follows at once, the pool after `up` rounds.
    s.setKernel(
      [
        { name: 'wan1', index: 2, address: '203.0.113.2', prefixLength: 29 },
        { name: 'wan2', index: 7, address: '203.0.113.11', prefixLength: 29 },
      ],
      [{ via: '203.0.113.1', dev: 'wan1' }],
    );
    state = await s.kernelEvent();
    expect(state).toMatchObject({ 'link.isp2': 'down', 'link.isp2.ready': '1', 'link.isp2.address': '203.0.113.11' });
    expect(s.tableRoute(102)).toBe('default via 203.0.113.9 dev wan2');
    expect(s.ruleFrom(112)).toBe('203.0.113.11');
    expect(s.pings().at(-1)).toBe('-n -O -i 1 -I 203.0.113.11 198.51.100.9');
    await s.round({ isp1: 'ok', isp2: 'ok' });
    state = await s.round({ isp1: 'ok', isp2: 'ok' });
    expect(state).toMatchObject({ 'link.isp2': 'up', balanced: 'isp1,isp2' });
    expect(payloadBalance(s.swaps().at(-1)!.payload, gw)).toEqual(renderedBalance(gw, []));
  });

  it('follows a DHCP link through a renewal with a new address and router, as a plan would render it', async () => {
    const gw = dhcpGateway();
    const s = sandbox(gw);
    // No lease recorded: the DHCP client's main-table default route through wan1 is the next hop.
    await s.start();
    expect(s.state()).toMatchObject({ 'link.isp1.nexthop': '203.0.113.1', 'link.isp1.source': 'main-route' });
    expect(s.pings()[0]).toBe('-n -O -i 1 -I 203.0.113.2 203.0.113.1');

    // The renewal: new address and router; dhclient kept its old default route, the hook recorded the lease.
    s.setKernel(
      [
        { name: 'wan1', index: 2, address: '198.51.100.66', prefixLength: 26 },
        { name: 'wan2', index: 3, address: '203.0.113.10', prefixLength: 29 },
      ],
      [{ via: '203.0.113.1', dev: 'wan1' }],
    );
    s.writeLease('wan1', '198.51.100.66', '198.51.100.65');
    s.advance(0.3);
    const state = await s.send('@poke wan1');
    expect(state).toMatchObject({ 'link.isp1': 'up', 'link.isp1.address': '198.51.100.66', 'link.isp1.nexthop': '198.51.100.65', 'link.isp1.source': 'dhcp-lease' });
    expect(s.tableRoute(101)).toBe('default via 198.51.100.65 dev wan1');
    expect(s.ruleFrom(111)).toBe('198.51.100.66');
    expect(s.pings().at(-1)).toBe('-n -O -i 1 -I 198.51.100.66 198.51.100.65');
    const facts = factsFor(gw);
    facts.interfaces = facts.interfaces.map((i) => (i.name === 'wan1' ? { ...i, ipv4: ['198.51.100.66/26'] } : i));
    facts.dhcpLeases = { wan1: { address: '198.51.100.66', router: '198.51.100.65' } };
    expect(kernelRouting(s, gw)).toEqual(renderedRouting(gw, facts));
  });

  it('ignores a lease for an address the interface no longer has, and waits for a router before the link is ready', async () => {
    const gw = dhcpGateway();
    const s = sandbox(gw);
    s.writeLease('wan1', '203.0.113.3', '203.0.113.4');
    s.setKernel(
      [
        { name: 'wan1', index: 2, address: '203.0.113.2', prefixLength: 29 },
        { name: 'wan2', index: 3, address: '203.0.113.10', prefixLength: 29 },
      ],
      [{ via: '203.0.113.9', dev: 'wan2' }],
    );
    const state = await s.start();
    expect(state).toMatchObject({ 'link.isp1': 'down', 'link.isp1.ready': '0', 'link.isp1.reason': 'no DHCP lease or default route for wan1 yet', balanced: 'isp2' });
    expect(s.tableRoute(101)).toBe('unreachable default');
    // The address alone is enough for the source rule (the gateway's own traffic from it stays on the link's table).
    expect(s.ruleFrom(111)).toBe('203.0.113.2');
    expect(s.tableRoute(116)).toBe('default via 203.0.113.9 dev wan2');
    const facts = factsFor(gw);
    facts.mainDefaultRoutes = [{ via: '203.0.113.9', dev: 'wan2', metric: 0 }];
    facts.dhcpLeases = { wan1: { address: '203.0.113.3', router: '203.0.113.4' } };
    expect(kernelRouting(s, gw)).toEqual(renderedRouting(gw, facts));
  });

  it('routes a point-to-point link by device, with no next hop', async () => {
    const base = monitoredGateway([3, 1]);
    const gw: GatewaySpec = { ...base, links: [base.links[0]!, { ...base.links[1]!, interface: 'ppp0', nextHop: { kind: 'none' } }] };
    const s = sandbox(gw);
    s.setKernel(
      [
        { name: 'wan1', index: 2, address: '203.0.113.2', prefixLength: 29 },
        { name: 'ppp0', index: 9, address: '100.64.0.2', peer: '100.64.0.1' },
      ],
      [{ via: '203.0.113.1', dev: 'wan1' }],
    );
    const state = await s.start();
    expect(state).toMatchObject({ 'link.isp2.ready': '1', 'link.isp2.address': '100.64.0.2', 'link.isp2.nexthop': '', 'link.isp2.source': 'point-to-point' });
    expect(s.tableRoute(102)).toBe('default dev ppp0');
    expect(s.ruleFrom(112)).toBe('100.64.0.2');
    const facts = factsFor(gw);
    facts.interfaces = [facts.interfaces[0]!, facts.interfaces[1]!, { name: 'ppp0', up: true, ipv4: ['100.64.0.2/32'] }];
    expect(kernelRouting(s, gw)).toEqual(renderedRouting(gw, facts));
  });
});

describe('monitor.sh run: probes and the pool', () => {
  it('declares a link down after `down` failed rounds and swaps in the chain `up` would render', async () => {
    const gw = monitoredGateway([3, 1], { down: 3, up: 2 });
    const s = sandbox(gw);
    await s.start();
    // The first pool is swapped in at start: the chain is the live one whatever was loaded before.
    expect(s.swaps().map((x) => x.t)).toEqual([1000]);
    await s.round({ isp1: 'ok', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    expect(s.swaps()).toHaveLength(1);
    const state = await s.round({ isp1: 'fail', isp2: 'ok' });
    expect(s.swaps().map((x) => x.t)).toEqual([1000, 1004]);
    expect(payloadBalance(s.swaps()[1]!.payload, gw)).toEqual(renderedBalance(gw, ['isp1']));
    expect(state).toMatchObject({
      'link.isp1': 'down',
      'link.isp1.since': wall(1004),
      'link.isp1.last': '0/1 fail',
      'link.isp2': 'up',
      'link.isp2.last': '1/1 ok 3ms',
      mechanism: 'chain-swap',
      all_down: '0',
      balanced: 'isp2',
    });
    expect(s.log()).toMatch(/link isp1 down: 3 failed rounds in a row \(0\/1 probes answered, 1 needed\)/);
  });

  it("deletes only the dead link's tracked connections and moves the gateway's own traffic to the live link", async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const s = sandbox(gw);
    await s.start();
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    expect(s.conntrack()).toEqual(['1002.00 -D -m 0x10000000/0xf0000000']);
    expect(s.tableRoute(116)).toBe('default via 203.0.113.9 dev wan2');
    expect(s.log()).toMatch(/link isp1: deleted 2 tracked connections with mark 0x10000000\/0xf0000000/);
    // The link's own table stays: its probes still need it to come back.
    expect(s.tableRoute(101)).toBe('default via 203.0.113.1 dev wan1');
  });

  it("leaves the gateway's own traffic to the main table when its default is not a link's (a VPN's)", async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const s = sandbox(gw);
    s.setKernel(
      [
        { name: 'wan1', index: 2, address: '203.0.113.2', prefixLength: 29 },
        { name: 'wan2', index: 3, address: '203.0.113.10', prefixLength: 29 },
      ],
      [{ via: '192.0.2.77', dev: 'tun0' }],
    );
    await s.start();
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    expect(s.swaps()).toHaveLength(2);
    expect(s.tableRoute(116)).toBe('');
  });

  it('brings a link back after `up` good rounds, with the full chain again', async () => {
    const gw = monitoredGateway([3, 1], { down: 2, up: 2 });
    const s = sandbox(gw);
    await s.start();
    for (const a of ['fail', 'fail', 'ok'] as const) await s.round({ isp1: a, isp2: 'ok' });
    const state = await s.round({ isp1: 'ok', isp2: 'ok' });
    expect(s.swaps().map((x) => x.t)).toEqual([1000, 1002, 1004]);
    expect(payloadBalance(s.swaps()[2]!.payload, gw)).toEqual(renderedBalance(gw, []));
    expect(state).toMatchObject({ 'link.isp1': 'up', 'link.isp1.since': wall(1004), balanced: 'isp1,isp2' });
    expect(s.tableRoute(116)).toBe('default via 203.0.113.1 dev wan1');
    expect(s.log()).toMatch(/link isp1 up: 2 good rounds in a row/);
  });

  it('does not flip the chain for a link flapping faster than the thresholds', async () => {
    const gw = monitoredGateway([3, 1], { down: 3, up: 3 });
    const s = sandbox(gw);
    await s.start();
    for (const a of ['fail', 'fail', 'ok', 'fail', 'fail', 'ok', 'fail', 'ok', 'fail', 'fail', 'ok'] as const) await s.round({ isp1: a, isp2: 'ok' });
    expect(s.swaps()).toHaveLength(1);
    expect(s.conntrack()).toEqual([]);
    expect(s.state()['link.isp1']).toBe('up');
  });

  it('counts an answer slower than the timeout as lost, and a late reply to a lost probe once', async () => {
    const gw = monitoredGateway([3, 1], { down: 2, timeoutS: 0.5 });
    const s = sandbox(gw);
    await s.start();
    await s.round({ isp1: { rttMs: 700 }, isp2: 'ok' });
    expect(s.state()['link.isp1.last']).toBe('0/1 fail');
    // "no answer yet" for a probe, then its reply: one failed round, not a failure and a success.
    s.advance(1);
    const gen = s.state()['link.isp1.prober']!;
    await s.send(s.probeLine(1, 1, gen, { rttMs: 2 }));
    s.advance(1);
    await s.send('@p 1 1 ' + gen + ' no answer yet for icmp_seq=3', '@p 1 1 ' + gen + ' 64 bytes from 198.51.100.1: icmp_seq=3 ttl=64 time=1100 ms');
    expect(s.state()).toMatchObject({ 'link.isp1': 'up', 'link.isp1.last': '0/1 fail' });
  });

  it('restarts the probes of a link whose ping exited, counting the silence as failed rounds', async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const s = sandbox(gw);
    await s.start();
    const gen = s.state()['link.isp1.prober']!;
    s.advance(0.5);
    await s.send(`@x 1 1 ${gen}`);
    let state = await s.tick();
    expect(Number(state['link.isp1.prober'])).toBe(Number(gen) + 1);
    expect(state['link.isp1.last']).toBe('0/1 fail');
    state = await s.tick(3.5);
    expect(state['link.isp1']).toBe('down');
    // A stale line from the old ping counts for nothing.
    await s.send(`@p 1 1 ${gen} 64 bytes from 198.51.100.1: icmp_seq=9 ttl=64 time=1 ms`);
    expect(s.state()['link.isp1.last']).toBe('0/1 fail');
  });

  it('keeps everything as it is when every link is down, and says so', async () => {
    const gw = monitoredGateway([3, 1], { down: 2, up: 2 });
    const s = sandbox(gw);
    await s.start();
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'fail' });
    const state = await s.round({ isp1: 'fail', isp2: 'fail' });
    expect(s.swaps().map((x) => x.t)).toEqual([1000, 1002]);
    expect(s.conntrack()).toEqual(['1002.00 -D -m 0x10000000/0xf0000000']);
    expect(s.tableRoute(116)).toBe('default via 203.0.113.9 dev wan2');
    expect(state).toMatchObject({ 'link.isp1': 'down', 'link.isp2': 'down', all_down: '1', balanced: 'isp2' });
    expect(s.log()).toMatch(/all links down: keeping the balancing as it is \(links isp2\)/);
  });

  it('starts from the previous state file and keeps a down link out until its up threshold', async () => {
    const gw = monitoredGateway([3, 1], { up: 3 });
    const s = sandbox(gw);
    s.writeState(['mechanism=chain-swap', 'all_down=0', 'balanced=isp2', 'link.isp1=down', 'link.isp1.since=900', 'link.isp2=up', 'link.isp2.since=800']);
    await s.start();
    expect(payloadBalance(s.swaps()[0]!.payload, gw)).toEqual(renderedBalance(gw, ['isp1']));
    await s.round({ isp1: 'ok', isp2: 'ok' });
    await s.round({ isp1: 'ok', isp2: 'ok' });
    expect(s.swaps()).toHaveLength(1);
    const state = await s.round({ isp1: 'ok', isp2: 'ok' });
    expect(payloadBalance(s.swaps()[1]!.payload, gw)).toEqual(renderedBalance(gw, []));
    expect(state['link.isp2.since']).toBe('800');
  });

  it('keeps 5:2:1 in ratio over the links that are left', async () => {
    const gw = monitoredGateway([5, 2, 1], { down: 1 });
    const s = sandbox(gw);
    await s.start();
    const state = await s.round({ isp1: 'fail', isp2: 'ok', isp3: 'ok' });
    const rules = payloadBalance(s.swaps()[1]!.payload, gw);
    expect(rules).toEqual(renderedBalance(gw, ['isp1']));
    expect(rules.filter((x) => x.endsWith('0x20000000/0xf0000000'))).toHaveLength(2);
    expect(rules.filter((x) => x.endsWith('0x30000000/0xf0000000'))).toHaveLength(1);
    expect(state.balanced).toBe('isp2,isp3');
  });

  it('with the condition match, writes 0/1 per link instead of swapping chains', async () => {
    const gw = monitoredGateway([3, 1], { down: 2 });
    const facts = factsFor(gw);
    facts.firewall.iptables!.registeredMatches = ['condition'];
    const s = sandbox(gw, facts);
    // The kernel creates these files when the rules using them load.
    writeFileSync(join(s.conditions, 'lbprov_isp1'), '0\n');
    writeFileSync(join(s.conditions, 'lbprov_isp2'), '0\n');
    await s.start();
    expect(readFileSync(join(s.conditions, 'lbprov_isp1'), 'utf8')).toBe('1\n');
    await s.round({ isp1: 'fail', isp2: 'ok' });
    const state = await s.round({ isp1: 'fail', isp2: 'ok' });
    expect(s.swaps()).toEqual([]);
    expect(readFileSync(join(s.conditions, 'lbprov_isp1'), 'utf8')).toBe('0\n');
    expect(readFileSync(join(s.conditions, 'lbprov_isp2'), 'utf8')).toBe('1\n');
    expect(state).toMatchObject({ mechanism: 'condition', 'link.isp1': 'down' });
    expect(s.conntrack()).toEqual(['1002.00 -D -m 0x10000000/0xf0000000']);
  });
});

describe('monitor.sh run: tiers and sticky sources', () => {
  it('forgets the sources sticking to a link when it leaves the pool, once', async () => {
    const gw = { ...monitoredGateway([3, 1], { down: 2 }), sticky: { timeoutS: 600 }, firewall: 'nftables' as const };
    const s = sandbox(gw, factsFor(gw, {}, 'nftables'));
    await s.start();
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    await s.round({ isp1: 'fail', isp2: 'ok' });
    expect(s.calls().map((c) => c.args).filter((a) => a.startsWith('flush'))).toEqual(['flush set ip lbprov sticky_isp1_600']);
  });

  it("moves the gateway's own traffic to the next tier only when the lower one has no live link", async () => {
    const base = monitoredGateway([3, 1, 5], { down: 1 });
    const gw = { ...base, links: base.links.map((l, i) => ({ ...l, tier: i === 2 ? 2 : 1 })) };
    const s = sandbox(gw);
    s.setKernel(gw.links.map((l, i) => ({ name: l.interface, index: i + 2, address: `203.0.113.${8 * i + 2}`, prefixLength: 29 })), [{ via: '203.0.113.1', dev: 'wan1' }]);
    await s.start();
    // isp3 is the heaviest, but tier 2.
    expect(s.tableRoute(116)).toBe('default via 203.0.113.1 dev wan1');
    await s.round({ isp1: 'fail', isp2: 'ok', isp3: 'ok' });
    expect(s.tableRoute(116)).toBe('default via 203.0.113.9 dev wan2');
    await s.round({ isp1: 'fail', isp2: 'fail', isp3: 'ok' });
    expect(s.tableRoute(116)).toBe('default via 203.0.113.17 dev wan3');
  });
});

describe('monitor.sh run: link quality, flap damping, hooks, metrics', () => {
  const quality = { latencyMs: { down: 500, up: 250 }, lossPct: { down: 20, up: 5 }, window: 10 };

  it('takes a slow link out on latency over the window and brings it back below the up threshold, not between', async () => {
    const gw = monitoredGateway([3, 1], { ...quality, window: 3 });
    const s = sandbox(gw);
    await s.start();
    await s.round({ isp1: { rttMs: 700 }, isp2: 'ok' });
    let state = await s.round({ isp1: { rttMs: 700 }, isp2: 'ok' });
    // (700 + 700) / 2 = 700 ms over 500: degraded, out of the pool like a dead link.
    expect(state).toMatchObject({ 'link.isp1': 'degraded', 'link.isp1.in_pool': '0', balanced: 'isp2', 'link.isp1.rtt_us': '700000' });
    expect(payloadBalance(s.swaps().at(-1)!.payload, gw)).toEqual(renderedBalance(gw, ['isp1']));
    // A slow link's connections still work: nothing is deleted.
    expect(s.conntrack()).toEqual([]);
    // 300 ms: between the thresholds, the state does not change.
    for (let i = 0; i < 3; i++) state = await s.round({ isp1: { rttMs: 300 }, isp2: 'ok' });
    expect(state['link.isp1']).toBe('degraded');
    for (let i = 0; i < 3; i++) state = await s.round({ isp1: { rttMs: 100 }, isp2: 'ok' });
    expect(state).toMatchObject({ 'link.isp1': 'up', 'link.isp1.in_pool': '1', balanced: 'isp1,isp2' });
  });

  it('takes a lossy link out on loss over the window (without 3 failures in a row), and keeps a degraded link when it is the last one', async () => {
    const gw = monitoredGateway([3, 1], quality);
    const s = sandbox(gw);
    await s.start();
    let state: Record<string, string> = {};
    for (const a of ['ok', 'fail', 'ok', 'fail', 'ok'] as const) state = await s.round({ isp1: a, isp2: 'ok' });
    expect(state).toMatchObject({ 'link.isp1': 'degraded', 'link.isp1.loss_pm': '400', balanced: 'isp2' });
    expect(state['link.isp1.why']).toMatch(/^loss \d+\.\d % over the window \(down above 20 %\)$/);
    // isp2 dies: the degraded isp1 is the last live link and takes the pool back.
    for (let i = 0; i < 3; i++) state = await s.round({ isp1: 'ok', isp2: 'fail' });
    expect(state).toMatchObject({ 'link.isp2': 'down', 'link.isp1': 'degraded', balanced: 'isp1', all_down: '0' });
  });

  it('holds a link that flaps more than allowed down for the hold time, and says so', async () => {
    const gw = monitoredGateway([3, 1], { down: 1, up: 1, flap: { changes: 3, withinS: 600, holdS: 30 } });
    const s = sandbox(gw);
    await s.start();
    let state: Record<string, string> = {};
    for (const a of ['fail', 'ok', 'fail', 'ok'] as const) state = await s.round({ isp1: a, isp2: 'ok' });
    expect(state['link.isp1']).toBe('down');
    expect(state['link.isp1.why']).toMatch(/^flapping: 4 changes in 10 min, held down for 30s/);
    expect(Number(state['link.isp1.held_until'])).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) state = await s.round({ isp1: 'ok', isp2: 'ok' });
    expect(state['link.isp1']).toBe('down');
    await s.tick(30);
    state = await s.round({ isp1: 'ok', isp2: 'ok' });
    expect(state).toMatchObject({ 'link.isp1': 'up', 'link.isp1.held_until': '0' });
  });

  it('runs each hook with the change in its environment, in its own process, and kills one past its timeout', async () => {
    const out = join(tmpdir(), `lbprov-hook-${process.pid}-${Date.now()}`);
    const hooks = [
      { name: 'record.sh', localPath: '/x', content: `#!/bin/sh\necho "$LBPROV_LINK $LBPROV_EVENT $LBPROV_LIVE_LINKS [$LBPROV_REASON]" >> ${out}\n` },
      { name: 'slow.sh', localPath: '/y', content: '#!/bin/sh\nsleep 60\n' },
    ];
    const gw = { ...monitoredGateway([3, 1], { down: 2 }), hooks, hookTimeoutS: 1 };
    const s = sandbox(gw);
    for (const h of hooks) {
      mkdirSync(join(s.etc, 'hooks'), { recursive: true });
      writeFileSync(join(s.etc, 'hooks', h.name), h.content, { mode: 0o755 });
    }
    try {
      await s.start();
      await s.round({ isp1: 'fail', isp2: 'ok' });
      const started = Date.now();
      await s.round({ isp1: 'fail', isp2: 'ok' });
      // The slow hook did not hold the loop up.
      expect(Date.now() - started).toBeLessThan(1500);
      await waitFor('the record hook', () => existsSync(out) && readFileSync(out, 'utf8'));
      expect(readFileSync(out, 'utf8')).toBe('isp1 down isp2 [2 failed rounds in a row (0/1 probes answered, 1 needed)]\n');
      await waitFor('the slow hook to be killed', () => /hook .*slow\.sh \(isp1 down\) killed after 1s/.test(s.log()), 6000);
    } finally {
      rmSync(out, { force: true });
    }
  });

  it('writes a Prometheus text file a real parser reads, whose values are the state file\'s', async () => {
    const metrics = mkdtempSync(join(tmpdir(), 'lbprov-metrics-'));
    const gw = { ...monitoredGateway([3, 1], quality), metricsDir: metrics };
    const s = sandbox(gw);
    try {
      await s.start();
      await s.round({ isp1: { rttMs: 12.5 }, isp2: 'ok' });
      await s.round({ isp1: { rttMs: 17.5 }, isp2: 'fail' });
      const state = await s.round({ isp1: 'ok', isp2: 'fail' });
      const families = parsePrometheusTextFormat(readFileSync(join(metrics, 'lbprov.prom'), 'utf8'));
      const value = (name: string, labels: Record<string, string>) =>
        Number(families.find((f) => f.name === name)!.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))!.value);
      expect(value('lbprov_link_up', { link: 'isp1' })).toBe(1);
      expect(value('lbprov_link_up', { link: 'isp2' })).toBe(state['link.isp2.in_pool'] === '1' ? 1 : 0);
      expect(value('lbprov_link_rtt_seconds', { link: 'isp1' })).toBeCloseTo(Number(state['link.isp1.rtt_us']) / 1e6, 6);
      expect(value('lbprov_link_loss_ratio', { link: 'isp2' })).toBeCloseTo(Number(state['link.isp2.loss_pm']) / 1000, 3);
      expect(value('lbprov_link_state', { link: 'isp2', state: state['link.isp2']! })).toBe(1);
      expect(value('lbprov_live_links', {})).toBe(state.balanced!.split(',').length);
      expect(families.find((f) => f.name === 'lbprov_link_transitions_total')!.type).toBe('COUNTER');
    } finally {
      rmSync(metrics, { recursive: true, force: true });
    }
  });
});

describe('monitor.sh start/stop (real clock, plain supervisor)', () => {
  it('starts detached, restarts a killed worker, and stops by pidfile', async () => {
    const s = sandbox(monitoredGateway([3, 1]));
    await s.control('start', 'rev1');
    const supervisor = s.pidFrom('monitor.pid');
    expect(alive(supervisor)).toBe(true);
    expect(readFileSync(`/proc/${supervisor}/cmdline`, 'utf8').split('\0')).toContain('supervise');
    expect(readFileSync(join(s.run, 'monitor.revision'), 'utf8')).toBe('rev1\n');
    const worker = await waitFor('the worker', () => alive(s.pidFrom('monitor.worker.pid')) && s.pidFrom('monitor.worker.pid'));

    process.kill(worker, 'SIGKILL');
    const replacement = await waitFor('a new worker', () => {
      const pid = s.pidFrom('monitor.worker.pid');
      return pid !== worker && alive(pid) && pid;
    });
    expect(s.pidFrom('monitor.pid')).toBe(supervisor);
    expect(s.log()).toMatch(/monitor worker exited \(status 137\); restarting in 1s/);

    await s.control('restart', 'rev2');
    expect(alive(supervisor)).toBe(false);
    expect(alive(replacement)).toBe(false);
    expect(alive(s.pidFrom('monitor.pid'))).toBe(true);
    expect(readFileSync(join(s.run, 'monitor.revision'), 'utf8')).toBe('rev2\n');

    const second = s.pidFrom('monitor.pid')!;
    await s.control('stop');
    expect(alive(second)).toBe(false);
    expect(s.pidFrom('monitor.pid')).toBeNull();
  });

  it('a worker whose supervisor was killed exits instead of running unsupervised', async () => {
    const s = sandbox(monitoredGateway([3, 1]));
    await s.control('start', 'rev1');
    const supervisor = s.pidFrom('monitor.pid')!;
    const worker = await waitFor('the worker', () => alive(s.pidFrom('monitor.worker.pid')) && s.pidFrom('monitor.worker.pid'));
    process.kill(supervisor, 'SIGKILL');
    await waitFor('the worker to exit', () => !alive(worker));
    expect(s.log()).toMatch(new RegExp(`supervisor ${supervisor} is gone; worker ${worker} exits`));
  });

  it('ticks on with sleep where the loopback ping that is its tick cannot run', async () => {
    const s = sandbox(monitoredGateway([3, 1]));
    writeFileSync(join(s.data, 'no-loopback'), '');
    await s.control('start', 'rev1');
    const supervisor = s.pidFrom('monitor.pid')!;
    const worker = await waitFor('the worker', () => alive(s.pidFrom('monitor.worker.pid')) && s.pidFrom('monitor.worker.pid'));
    // Only a tick notices the supervisor is gone.
    process.kill(supervisor, 'SIGKILL');
    await waitFor('the worker to exit', () => !alive(worker));
    expect(s.log()).toMatch(new RegExp(`supervisor ${supervisor} is gone; worker ${worker} exits`));
  });
});
