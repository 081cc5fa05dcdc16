import { describe, expect, it } from 'vitest';
import { ipToInt, LAN_CLIENT_ADDRESS, MAX_DOCUMENTATION_GATEWAYS, MAX_LAN_SOURCES, planAddresses, SERVICE_ADDRESSES, upstream } from '../../src/lab/addressing.js';
import { LabError } from '../../src/lab/errors.js';
import { Lab } from '../../src/lab/lab.js';
import { testLayout } from './test-layout.js';
import { namespaceSetups } from '../../src/lab/network.js';
import type { LinkKind } from '../../src/lab/state.js';
import { countConnections } from '../../src/lab/traffic.js';
import { cidrRange, DOC_RANGES, linkRanges, RESERVED } from './ranges.js';

const layout = testLayout;

function setupOf(state: ReturnType<typeof layout>, ns: string): string[] {
  const setup = namespaceSetups(state).find((candidate) => candidate.ns === ns);
  if (setup === undefined) throw new Error(`no setup for ${ns}`);
  return setup.batch;
}

describe('LAN sources', () => {
  it('are the one LAN client address by default, with no second LAN', () => {
    const state = layout();
    expect(state.gateways.map((gateway) => gateway.lanSources)).toEqual([[LAN_CLIENT_ADDRESS], [LAN_CLIENT_ADDRESS]]);
    expect(state.gateways[0]?.secondLan).toBeUndefined();
    expect(planAddresses(2, 2).secondLan).toBeUndefined();
    expect(setupOf(state, 'lbt1-gw1').filter((line) => line.includes('lan0'))).toEqual(['link set lan0 up', 'addr add 198.51.100.1/28 dev lan0']);
  });

  it('take the others from a second LAN block after lan0, the same on every gateway', () => {
    const state = layout({ lanSources: MAX_LAN_SOURCES });
    const [gw1, gw2] = state.gateways;
    expect(gw1?.secondLan).toEqual({ cidr: '198.51.100.128/26', prefixLength: 26, lanAddress: '198.51.100.129' });
    expect(gw1?.lanSources).toHaveLength(MAX_LAN_SOURCES);
    expect(gw1?.lanSources.slice(0, 3)).toEqual([LAN_CLIENT_ADDRESS, '198.51.100.130', '198.51.100.131']);
    expect(gw1?.lanSources.at(-1)).toBe('198.51.100.188');
    expect(new Set(gw1?.lanSources).size).toBe(MAX_LAN_SOURCES);
    expect(gw2?.lanSources).toEqual(gw1?.lanSources);
    expect(layout({ lanSources: 2 }).gateways[0]?.secondLan).toEqual({ cidr: '198.51.100.128/30', prefixLength: 30, lanAddress: '198.51.100.129' });
  });

  it('puts lan0 on both LAN subnets and every source on the LAN client, the first one first', () => {
    const state = layout({ lanSources: 3 });
    expect(setupOf(state, 'lbt1-gw2')).toContain('addr add 198.51.100.129/29 dev lan0');
    const client = setupOf(state, 'lbt1-gw2-lan').filter((line) => line.startsWith('addr add'));
    expect(client).toEqual(['addr add 198.51.100.2/28 dev eth0', 'addr add 198.51.100.130/29 dev eth0', 'addr add 198.51.100.131/29 dev eth0']);
  });

  it.each([
    [1, ['static', 'static'], 60],
    [1, ['dhcp', 'p2p', 'static', 'p2p'], 60],
    [5, Array<LinkKind>(16).fill('static'), 13],
    [13, ['p2p', 'dhcp', 'static'], 60],
    [30, ['static', 'p2p'], 60],
    [60, ['static', 'static', 'dhcp'], 60],
    [MAX_DOCUMENTATION_GATEWAYS, ['static', 'static', 'static'], 60],
    [MAX_DOCUMENTATION_GATEWAYS, ['static', 'dhcp'], 60],
  ] as [number, LinkKind[], number][])('%i gateways, links %j, %i sources: the second LAN is clear of every other range', (gateways, kinds, sources) => {
    const plan = planAddresses(gateways, kinds.length, kinds, sources);
    if (plan.secondLan === undefined) throw new Error('no second LAN');
    const lan = cidrRange(plan.secondLan.cidr);
    expect(lan[1] - lan[0] + 1).toBeGreaterThanOrEqual(sources - 1 + 3);
    expect(DOC_RANGES.some(([low, high]) => lan[0] >= low && lan[1] <= high)).toBe(true);
    const others = [...RESERVED, ...linkRanges(plan)];
    for (const [low, high] of others) expect(lan[1] < low || lan[0] > high).toBe(true);
  });

  it('fail with a LabError when they do not fit or are out of range', () => {
    expect(() => planAddresses(60, 7, Array<LinkKind>(7).fill('static'), 2)).toThrow(/no block of 4 addresses for 2 LAN sources/);
    expect(() => planAddresses(60, 7)).not.toThrow();
    for (const count of [0, MAX_LAN_SOURCES + 1, 1.5]) expect(() => layout({ lanSources: count })).toThrow(LabError);
  });
});

describe('lab server addresses and ports', () => {
  it('answers on two service addresses in different /29s, TCP 80 and 8080, UDP 5060 and 10000', () => {
    const { server } = layout();
    expect(server).toMatchObject({ address: '198.51.100.20', serviceAddresses: ['198.51.100.20', '198.51.100.24'], port: 80, tcpPorts: [80, 8080], udpPorts: [5060, 10000], echoPort: 7 });
    const [a, b] = SERVICE_ADDRESSES.map(ipToInt) as [number, number];
    expect(a >>> 3).not.toBe(b >>> 3);
  });

  it('keeps them clear of the LAN, the upstream /31s (probes) and the second LAN', () => {
    const upstreams = cidrRange('198.51.100.32/27');
    const lan = cidrRange('198.51.100.0/28');
    for (const address of SERVICE_ADDRESSES.map(ipToInt)) {
      expect(address < upstreams[0] || address > upstreams[1]).toBe(true);
      expect(address < lan[0] || address > lan[1]).toBe(true);
    }
    expect(SERVICE_ADDRESSES).not.toContain(upstream(1).server);
    expect(setupOf(layout(), 'lbt1-srv').slice(0, 3)).toEqual(['link set lo up', 'addr add 198.51.100.20/32 dev lo', 'addr add 198.51.100.24/32 dev lo']);
  });
});

describe('countConnections options', () => {
  const lab = new Lab(layout({ lanSources: 3 }));

  it.each([
    [{ port: 8081 }, /answers tcp on ports 80, 8080, not 8081/],
    [{ protocol: 'udp', port: 80 }, /answers udp on ports 5060, 10000, not 80/],
    [{ destination: '198.51.100.33' }, /answers on 198.51.100.20, 198.51.100.24, not 198.51.100.33/],
    [{ sources: ['198.51.100.130', '198.51.100.140'] }, /gw1 has 3 LAN sources \(LabGateway.lanSources\); 198.51.100.140 is not one/],
    [{ sources: [] }, /sources must name at least one LAN source/],
  ] as const)('refuses %j before any traffic', async (options, message) => {
    await expect(countConnections(lab, 0, 1, options)).rejects.toThrow(message);
  });
});
