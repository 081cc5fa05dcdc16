import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { customerAddress, ipToInt, MAX_DOCUMENTATION_GATEWAYS, planAddresses } from '../../src/lab/addressing.js';
import { renderLabInventory } from '../../src/lab/inventory.js';
import type { LayoutInput } from '../../src/lab/layout.js';
import { testLayout } from './test-layout.js';
import { linkBySource } from '../../src/lab/links.js';
import { namespaceSetups, rootBatch } from '../../src/lab/network.js';
import type { LinkKind } from '../../src/lab/state.js';
import { cidrRange, DOC_RANGES, linkRanges, RESERVED } from './ranges.js';

function layout(kinds: readonly LinkKind[], gateways = 2, overrides: Partial<LayoutInput> = {}) {
  return testLayout({ slots: Array.from({ length: gateways }, (_, index) => index), weights: kinds.map(() => 1), linkKinds: kinds, ...overrides });
}

describe('address plan of dynamic links', () => {
  it('keeps the static plan as it was and puts a dhcp link\'s second pool after the customer blocks', () => {
    const plan = planAddresses(1, 2, ['static', 'dhcp']);
    expect(plan.customerBlocks.map((block) => block.cidr)).toEqual(['203.0.113.0/29', '203.0.113.8/29']);
    expect(plan.alternateBlocks).toEqual([undefined, { cidr: '203.0.113.16/29', prefixLength: 29, nextHop: '203.0.113.17' }]);
    expect(plan.carriers).toEqual([undefined, undefined]);
    expect(planAddresses(1, 2).customerBlocks).toEqual(plan.customerBlocks);
  });

  it('gives each gateway of a p2p link its own carrier /31, ISP end even', () => {
    const plan = planAddresses(3, 2, ['static', 'p2p']);
    expect(plan.carriers[1]).toEqual([
      { isp: '203.0.113.24', gateway: '203.0.113.25' },
      { isp: '203.0.113.26', gateway: '203.0.113.27' },
      { isp: '203.0.113.28', gateway: '203.0.113.29' },
    ]);
  });

  it.each([
    [1, ['static', 'dhcp']],
    [1, ['dhcp', 'p2p', 'static', 'p2p']],
    [5, ['p2p', 'p2p']],
    [6, ['static', 'p2p', 'dhcp']],
    [13, ['p2p', 'dhcp', 'static']],
    [30, ['static', 'p2p']],
    [61, ['dhcp', 'static']],
    [MAX_DOCUMENTATION_GATEWAYS, ['static', 'dhcp']],
  ] as [number, LinkKind[]][])('%i gateways, links %j: disjoint ranges in the documentation ranges, clear of the infrastructure', (gateways, kinds) => {
    const ranges = linkRanges(planAddresses(gateways, kinds.length, kinds));
    const sorted = [...ranges, ...RESERVED].sort((a, b) => a[0] - b[0]);
    sorted.slice(1).forEach((range, index) => expect(range[0]).toBeGreaterThan((sorted[index] as [number, number])[1]));
    for (const [start, end] of ranges) expect(DOC_RANGES.some(([low, high]) => start >= low && end <= high)).toBe(true);
    // Every gateway's address in every pool is a host of its block, never its broadcast address.
    const plan = planAddresses(gateways, kinds.length, kinds);
    for (const block of [...plan.customerBlocks, ...plan.alternateBlocks]) {
      if (block !== undefined) expect(ipToInt(customerAddress(block, gateways))).toBeLessThan(cidrRange(block.cidr)[1]);
    }
  });

  it('refuses dynamic links that do not fit instead of overlapping', () => {
    expect(() => planAddresses(MAX_DOCUMENTATION_GATEWAYS, 2, ['static', 'p2p'])).toThrow(/do not fit.*need 3 more blocks of 128 addresses, 1 are left/);
    expect(() => planAddresses(MAX_DOCUMENTATION_GATEWAYS, 3, ['static', 'static', 'dhcp'])).toThrow(/do not fit/);
    expect(() => planAddresses(1, 2, ['dhcp'])).toThrow(/1 link kinds given for 2 links/);
  });
});

describe('layout of dynamic links', () => {
  it('names a p2p link ppp<k> over a carrier veth, and a dhcp link wan<k>', () => {
    const [gw1] = layout(['static', 'dhcp', 'p2p']).gateways;
    expect(gw1?.links.map((link) => [link.kind, link.interface, link.ispInterface])).toEqual([
      ['static', 'wan1', 'gw1'],
      ['dhcp', 'wan2', 'gw1'],
      ['p2p', 'ppp3', 'gw1-ppp'],
    ]);
    expect(gw1?.links[2]?.carrier).toEqual({ interface: 'carrier3', address: '203.0.113.41', ispInterface: 'gw1-carrier', ispAddress: '203.0.113.40' });
    expect(gw1?.links[0]?.pools).toBeUndefined();
  });

  it('gives dynamic links two pools per gateway (a lease on pool 0 from the start; p2p has had no session)', () => {
    const state = layout(['dhcp', 'p2p'], 2);
    const [dhcp, p2p] = state.gateways[1]?.links ?? [];
    expect(dhcp?.pools).toEqual([
      { gatewayAddress: '203.0.113.3', nextHop: '203.0.113.1', prefixLength: 29 },
      { gatewayAddress: '203.0.113.19', nextHop: '203.0.113.17', prefixLength: 29 },
    ]);
    expect(dhcp?.pool).toBe(0);
    expect(p2p?.pools).toEqual([
      { gatewayAddress: '203.0.113.11', nextHop: '203.0.113.9', prefixLength: 32 },
      { gatewayAddress: '203.0.113.27', nextHop: '203.0.113.25', prefixLength: 32 },
    ]);
    expect(p2p).toMatchObject({ connected: false, prefixLength: 32 });
    expect(p2p?.pool).toBeUndefined();
    expect(state.isps.map((isp) => isp.alternateBlock)).toEqual(['203.0.113.16/29', '203.0.113.24/29']);
  });

  it('keeps every interface name within IFNAMSIZ at the largest p2p lab that fits', () => {
    const state = layout(['p2p', 'static'], 60, { prefix: 'abcdefghi', lanClients: [0] });
    const names = state.gateways.flatMap((gateway) => gateway.links.flatMap((link) => [link.interface, link.ispInterface, link.carrier?.ispInterface ?? '']));
    expect(Math.max(...names.map((name) => name.length))).toBeLessThanOrEqual(15);
  });

  it('attributes every address a dynamic link can have to that link', () => {
    const gateway = layout(['static', 'dhcp', 'p2p'], 3).gateways[2];
    for (const link of gateway?.links ?? []) {
      for (const address of [link.gatewayAddress, ...(link.pools ?? []).map((pool) => pool.gatewayAddress)]) {
        expect(gateway && linkBySource(gateway, address)?.name).toBe(link.name);
      }
    }
  });

  it('writes gateway: dhcp and gateway: none with the upstream probe, static links unchanged', () => {
    const inventory = parse(renderLabInventory(layout(['static', 'dhcp', 'p2p'], 1))) as { gateways: { gw1: { links: unknown[] } } };
    expect(inventory.gateways.gw1.links).toEqual([
      { name: 'isp1', interface: 'wan1', gateway: '203.0.113.1', weight: 1, probes: ['198.51.100.33'] },
      { name: 'isp2', interface: 'wan2', gateway: 'dhcp', weight: 1, probes: ['198.51.100.35'] },
      { name: 'isp3', interface: 'ppp3', gateway: 'none', weight: 1, probes: ['198.51.100.37'] },
    ]);
  });
});

describe('network of dynamic links', () => {
  const state = layout(['dhcp', 'p2p'], 1);
  const setups = namespaceSetups(state);
  const setupOf = (ns: string) => setups.find((setup) => setup.ns === ns);

  it('creates a carrier veth for a p2p link (its ppp<k> comes with a session) and a plain veth for dhcp', () => {
    const veths = rootBatch(state).filter((line) => line.includes('netns lbt1-gw1 type veth'));
    expect(veths).toContain('link add wan1 netns lbt1-gw1 type veth peer name gw1 netns lbt1-isp1');
    expect(veths).toContain('link add carrier2 netns lbt1-gw1 type veth peer name gw1-carrier netns lbt1-isp2');
    expect(veths.some((line) => line.includes('ppp2'))).toBe(false);
  });

  it('leaves the dhcp link unaddressed on the gateway and gives no default before a lease or session', () => {
    const gateway = setupOf('lbt1-gw1');
    expect(gateway?.batch).toContain('link set wan1 up');
    expect(gateway?.batch.filter((line) => line.startsWith('addr add')).map((line) => line.split(' dev ')[1])).toEqual(['mgmt0', 'lan0', 'carrier2']);
    expect(gateway?.batch.some((line) => line.startsWith('route add default'))).toBe(false);
    expect(gateway?.masqueradeInterface).toBe('wan1');
  });

  it('routes both pools back from the server and never forwards what arrives on a carrier', () => {
    expect(setupOf('lbt1-srv')?.batch).toEqual(expect.arrayContaining([
      'route add 203.0.113.0/29 via 198.51.100.32 dev isp1',
      'route add 203.0.113.16/29 via 198.51.100.32 dev isp1',
      'route add 203.0.113.8/29 via 198.51.100.34 dev isp2',
      'route add 203.0.113.24/29 via 198.51.100.34 dev isp2',
    ]));
    const isp2 = setupOf('lbt1-isp2')?.sysctls ?? [];
    expect(isp2).toEqual(['net/ipv4/ip_forward=1', 'net/ipv4/conf/all/rp_filter=1', 'net/ipv4/conf/all/arp_ignore=1', 'net/ipv4/conf/gw1-carrier/forwarding=0']);
    // The dhcp ISP starts as a static one: router address and a host route to the gateway's first lease.
    expect(setupOf('lbt1-isp1')?.batch).toEqual(expect.arrayContaining(['addr add 203.0.113.1/29 dev gw1 noprefixroute', 'route add 203.0.113.2/32 dev gw1']));
  });
});
