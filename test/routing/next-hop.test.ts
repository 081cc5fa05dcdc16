import { describe, expect, it } from 'vitest';
import { describeLinkPath, parseIpRoutes, resolveLinkPath } from '../../src/routing/index.js';
import { parseMainDefaultRoutes } from '../../src/routing/routes.js';
import { parseDhcpLeases } from '../../src/facts/core.js';
import type { LinkSpec } from '../../src/model/inventory.js';
import { factsFor, gatewaySpec } from '../helpers/gateway.js';

const gw = gatewaySpec([3, 1]);
const dhcp: LinkSpec = { ...gw.links[0]!, nextHop: { kind: 'dhcp' }, probes: [] };
const p2p: LinkSpec = { ...gw.links[1]!, interface: 'ppp0', nextHop: { kind: 'none' } };

describe('resolveLinkPath: where a link goes, from the facts', () => {
  it('a static link: the inventory next hop, from the interface address', () => {
    expect(resolveLinkPath(gw.links[0]!, factsFor(gw))).toEqual({
      address: '203.0.113.2',
      nextHop: '203.0.113.1',
      source: 'inventory',
      ready: true,
      reason: '',
      route: 'default via 203.0.113.1 dev wan1',
    });
  });

  it('a DHCP link: the recorded lease while its address is the interface one, else the lowest-metric main default through it', () => {
    const facts = factsFor(gw);
    facts.mainDefaultRoutes = [
      { via: '192.0.2.1', dev: 'eth9', metric: 0 },
      { via: '203.0.113.5', dev: 'wan1', metric: 200 },
      { via: '203.0.113.4', dev: 'wan1', metric: 100 },
    ];
    expect(resolveLinkPath(dhcp, facts)).toMatchObject({ nextHop: '203.0.113.4', source: 'main-route', route: 'default via 203.0.113.4 dev wan1' });
    facts.dhcpLeases = { wan1: { address: '203.0.113.2', router: '203.0.113.6' } };
    expect(resolveLinkPath(dhcp, facts)).toMatchObject({ nextHop: '203.0.113.6', source: 'dhcp-lease' });
    facts.dhcpLeases = { wan1: { address: '203.0.113.3', router: '203.0.113.6' } };
    expect(resolveLinkPath(dhcp, facts)).toMatchObject({ nextHop: '203.0.113.4', source: 'main-route' });
    facts.mainDefaultRoutes = [];
    expect(resolveLinkPath(dhcp, facts)).toMatchObject({ ready: false, address: '203.0.113.2', route: 'unreachable default', reason: 'no DHCP lease or default route for wan1 yet' });
  });

  it('a point-to-point link: by device, ready with an address', () => {
    const facts = factsFor(gw);
    facts.interfaces.push({ name: 'ppp0', up: true, ipv4: ['100.64.0.2/32'] });
    expect(resolveLinkPath(p2p, facts)).toMatchObject({ address: '100.64.0.2', nextHop: null, ready: true, route: 'default dev ppp0' });
    expect(describeLinkPath(p2p, resolveLinkPath(p2p, facts))).toBe('isp2: point-to-point on ppp0 (address 100.64.0.2), no next hop');
  });

  it('a link whose interface is missing, down or without an address is not ready, and says why', () => {
    const facts = factsFor(gw);
    expect(resolveLinkPath(p2p, facts)).toMatchObject({ ready: false, address: null, reason: 'interface ppp0 does not exist', route: 'unreachable default' });
    facts.interfaces = facts.interfaces.map((i) => (i.name === 'wan1' ? { ...i, up: false } : i));
    expect(resolveLinkPath(gw.links[0]!, facts).reason).toBe('interface wan1 is down or has no carrier');
    facts.interfaces = facts.interfaces.map((i) => (i.name === 'wan1' ? { ...i, up: true, ipv4: [] } : i));
    expect(resolveLinkPath(gw.links[0]!, facts).reason).toBe('interface wan1 has no IPv4 address');
    expect(describeLinkPath(gw.links[0]!, resolveLinkPath(gw.links[0]!, facts))).toMatch(/^isp1: not ready \(interface wan1 has no IPv4 address\); its table holds "unreachable default"/);
  });

  it('describes a learned next hop as the plan shows it', () => {
    const facts = factsFor(gw);
    expect(describeLinkPath(dhcp, resolveLinkPath(dhcp, facts))).toBe('isp1: next hop 203.0.113.1 learned from the DHCP default route of wan1 (address 203.0.113.2)');
  });
});

describe('facts the next hops are learned from', () => {
  it("reads the main table's unicast default routes and skips what cannot be one (other tables, odd values)", () => {
    const json = [
      { dst: 'default', gateway: '198.51.100.1', dev: 'eth1', protocol: 'dhcp', metric: 100, flags: [] },
      { dst: 'default', dev: 'ppp0', scope: 'link', flags: [] },
      { dst: 'default', gateway: '192.0.2.1', dev: 'eth2', table: '101', flags: [] },
      { type: 'unreachable', dst: 'default', metric: 4278198272, flags: [] },
      { dst: 'default', gateway: 'x; reboot', dev: 'eth1\nflush', flags: [] },
      { dst: 'default', nhid: 7, flags: [] },
      { dst: '192.0.2.0/24', dev: 'eth0', flags: [] },
    ];
    expect(parseMainDefaultRoutes(json)).toEqual([
      { via: '198.51.100.1', dev: 'eth1', metric: 100 },
      { via: null, dev: 'ppp0', metric: 0 },
    ]);
    // Those routes are never lbprov's resources.
    expect(parseIpRoutes(json, 'ipv4', new Set([101]))).toHaveLength(1);
  });

  it("reads the dhclient hook's lease records and drops crafted ones with a warning", () => {
    const warnings: string[] = [];
    const leases = parseDhcpLeases('@eth1\naddress=198.51.100.66\nrouter=198.51.100.65 198.51.100.64\nreason=RENEW\n@eth2\naddress=1.2.3.4; reboot\nrouter=1.2.3.1\n@bad name\naddress=1.2.3.4\nrouter=1.2.3.1\n', warnings);
    expect(leases).toEqual({ eth1: { address: '198.51.100.66', router: '198.51.100.65' } });
    expect(warnings).toHaveLength(2);
  });
});
