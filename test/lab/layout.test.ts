import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { customerAddress, intToIp, ipToInt, managementPair, managementSlotRange, MANAGEMENT_SLOTS, MAX_GATEWAYS, planAddresses, SERVICE_ADDRESS, upstream } from '../../src/lab/addressing.js';
import { renderLabInventory } from '../../src/lab/inventory.js';
import { knownHostsLine } from '../../src/lab/create.js';
import { defaultWeights, type LayoutInput } from '../../src/lab/layout.js';
import { testLayout } from './test-layout.js';

const DOC_RANGES = ['192.0.2.0', '198.51.100.0', '203.0.113.0'].map(ipToInt);
const inDocRanges = (address: string): boolean => DOC_RANGES.some((base) => ipToInt(address) >>> 8 === base >>> 8);
const cidrRange = (cidr: string): [number, number] => {
  const [address, length] = cidr.split('/');
  const start = ipToInt(address as string);
  return [start, start + 2 ** (32 - Number(length)) - 1];
};
const INFRA: [number, number] = cidrRange('198.51.100.0/26');

function layout(overrides: Partial<LayoutInput> = {}) {
  return testLayout({ slots: [5, 6, 7], ...overrides });
}

describe('lab address plan', () => {
  it('gives the default lab the addresses of the seed-style example', () => {
    const plan = planAddresses(1, 2);
    expect(plan.customerBlocks.map((block) => block.cidr)).toEqual(['203.0.113.0/29', '203.0.113.8/29']);
    expect(plan.customerBlocks.map((block) => customerAddress(block, 1))).toEqual(['203.0.113.2', '203.0.113.10']);
    expect(plan.customerBlocks.map((block) => block.nextHop)).toEqual(['203.0.113.1', '203.0.113.9']);
  });

  it.each([
    [1, 2],
    [10, 5],
    [60, 7],
    [100, 3],
    [125, 3],
  ])('%i gateways x %i links: disjoint blocks in the documentation ranges, clear of the infrastructure', (gateways, links) => {
    const blocks = planAddresses(gateways, links).customerBlocks.map((block) => cidrRange(block.cidr));
    expect(blocks).toHaveLength(links);
    const all = [...blocks, INFRA].sort((a, b) => a[0] - b[0]);
    all.slice(1).forEach((range, index) => expect(range[0]).toBeGreaterThan((all[index] as [number, number])[1]));
    for (const block of planAddresses(gateways, links).customerBlocks) {
      const [start, end] = cidrRange(block.cidr);
      const last = ipToInt(customerAddress(block, gateways));
      expect(last).toBeLessThan(end); // never the broadcast address
      expect(ipToInt(block.nextHop)).toBe(start + 1);
      expect(inDocRanges(block.cidr.split('/')[0] as string)).toBe(true);
    }
  });

  it('refuses what does not fit instead of overlapping', () => {
    expect(() => planAddresses(100, 4)).toThrow(/do not fit/);
    expect(() => planAddresses(MAX_GATEWAYS + 1, 2)).toThrow(/gateways must be/);
    expect(() => planAddresses(1, 1)).toThrow(/links must be/);
  });

  it('pairs management addresses as /31s, root even and gateway odd', () => {
    expect(managementPair(0)).toEqual({ slot: 0, root: '192.0.2.0', gateway: '192.0.2.1' });
    expect(managementPair(127)).toEqual({ slot: 127, root: '192.0.2.254', gateway: '192.0.2.255' });
    // Then 198.18.0.0/16 (RFC 2544), for labs of more than 125 gateways.
    expect(managementPair(128)).toEqual({ slot: 128, root: '198.18.0.0', gateway: '198.18.0.1' });
    expect(managementPair(128 + 1000)).toEqual({ slot: 1128, root: '198.18.7.208', gateway: '198.18.7.209' });
    expect(() => managementPair(MANAGEMENT_SLOTS)).toThrow();
    expect(managementSlotRange(125)).toEqual([0, 128]);
    expect(managementSlotRange(126)).toEqual([128, MANAGEMENT_SLOTS]);
  });

  it('takes the customer blocks of a lab of 1,000 gateways from 198.19.0.0/16, one per link, none overlapping', () => {
    const plan = planAddresses(MAX_GATEWAYS, 3, ['static', 'dhcp', 'p2p'], 10);
    const blocks = [...plan.customerBlocks, ...plan.alternateBlocks.filter((b) => b !== undefined), ...(plan.secondLan ? [plan.secondLan] : [])];
    for (const block of plan.customerBlocks) expect(block.prefixLength).toBe(22);
    const spans = blocks.map((b) => [ipToInt(b.cidr.split('/')[0]!), 2 ** (32 - b.prefixLength)] as const);
    for (const [start, size] of spans) {
      expect(start).toBeGreaterThanOrEqual(ipToInt('198.19.0.0'));
      expect(start + size).toBeLessThanOrEqual(ipToInt('198.20.0.0'));
    }
    for (const [i, [a, n]] of spans.entries()) for (const [b, m] of spans.slice(i + 1)) expect(a + n <= b || b + m <= a).toBe(true);
    expect(customerAddress(plan.customerBlocks[0]!, 1000)).toBe(intToIp(ipToInt(plan.customerBlocks[0]!.cidr.split('/')[0]!) + 1001));
  });

  it('keeps the service, probes and LAN apart', () => {
    const probes = [1, 2, 3].map((link) => upstream(link).server);
    expect(probes).toEqual(['198.51.100.33', '198.51.100.35', '198.51.100.37']);
    expect(new Set([...probes, SERVICE_ADDRESS, '198.51.100.1', '198.51.100.2']).size).toBe(6);
  });
});

describe('lab layout', () => {
  it('names root interfaces within IFNAMSIZ and every namespace once', () => {
    const state = layout({ prefix: 'abcdefghi', slots: Array.from({ length: MAX_GATEWAYS }, (_, index) => index + 3), lanClients: [0] });
    expect(Math.max(...state.rootLinks.map((name) => name.length))).toBeLessThanOrEqual(15);
    expect(state.rootLinks.every((name) => name.startsWith('abcdefghi'))).toBe(true);
    expect(new Set(state.namespaces).size).toBe(state.namespaces.length);
    expect(state.namespaces.every((ns) => ns.startsWith('abcdefghi-'))).toBe(true);
  });

  it('creates LAN clients only where asked and parks the other LANs', () => {
    const state = layout({ lanClients: [1] });
    expect(state.gateways.map((gateway) => gateway.lanClientNs)).toEqual([undefined, 'lbt1-gw2-lan', undefined]);
    expect(state.parkingNs).toBe('lbt1-park');
    expect(layout({ lanClients: 'all' }).parkingNs).toBeUndefined();
  });

  it('gives each gateway its own source address per link and the same probes', () => {
    const state = layout({ weights: [5, 2, 1] });
    const sources = state.gateways.flatMap((gateway) => gateway.links.map((link) => link.gatewayAddress));
    expect(new Set(sources).size).toBe(9);
    expect(state.gateways.map((gateway) => gateway.links.map((link) => link.weight))).toEqual([[5, 2, 1], [5, 2, 1], [5, 2, 1]]);
    expect(state.gateways[2]?.links.map((link) => link.probe)).toEqual(['198.51.100.33', '198.51.100.35', '198.51.100.37']);
    expect(state.gateways.map((gateway) => gateway.mgmtAddress)).toEqual(['192.0.2.11', '192.0.2.13', '192.0.2.15']);
  });

  it('rejects bad prefixes and weights', () => {
    expect(() => layout({ prefix: 'Bad-prefix' })).toThrow(/prefix/);
    expect(() => layout({ prefix: 'abcdefghij' })).toThrow(/prefix/);
    expect(() => layout({ weights: [3, 0] })).toThrow(/weights/);
    expect(() => layout({ weights: [3, 1.5] })).toThrow(/weights/);
  });

  it('defaults to 3:1 for two links and K..1 otherwise', () => {
    expect(defaultWeights(2)).toEqual([3, 1]);
    expect(defaultWeights(3)).toEqual([3, 2, 1]);
  });
});

describe('lab inventory', () => {
  it('writes the inventory contract for every gateway', () => {
    const state = layout({ weights: [5, 2, 1] });
    const inventory = parse(renderLabInventory(state)) as Record<string, unknown>;
    expect(inventory.ssh).toEqual({ user: 'root', port: 22, identity_file: '/tmp/lab-test/id_ed25519', known_hosts: '/tmp/lab-test/known_hosts' });
    expect(Object.keys(inventory.gateways as object)).toEqual(['gw1', 'gw2', 'gw3']);
    expect((inventory.gateways as Record<string, unknown>).gw2).toEqual({
      host: '192.0.2.13',
      lan: { interfaces: ['lan0'] },
      links: [
        { name: 'isp1', interface: 'wan1', gateway: '203.0.113.1', weight: 5, probes: ['198.51.100.33'] },
        { name: 'isp2', interface: 'wan2', gateway: '203.0.113.9', weight: 2, probes: ['198.51.100.35'] },
        { name: 'isp3', interface: 'wan3', gateway: '203.0.113.17', weight: 1, probes: ['198.51.100.37'] },
      ],
    });
    expect(inventory.groups).toEqual({ lab: ['gw1', 'gw2', 'gw3'], east: ['gw1', 'gw2'], west: ['gw3'] });
  });

  it('has only the lab group for a single gateway', () => {
    const state = layout({ slots: [0] });
    expect((parse(renderLabInventory(state)) as { groups: unknown }).groups).toEqual({ lab: ['gw1'] });
  });
});

describe('known_hosts lines', () => {
  it('uses the plain host on port 22 and [host]:port otherwise, as OpenSSH does', () => {
    expect(knownHostsLine('192.0.2.1', 22, 'ssh-ed25519 AAAA')).toBe('192.0.2.1 ssh-ed25519 AAAA');
    expect(knownHostsLine('192.0.2.1', 2222, 'ssh-ed25519 AAAA')).toBe('[192.0.2.1]:2222 ssh-ed25519 AAAA');
  });
});
