import { describe, expect, it } from 'vitest';
import { parseInventoryText } from '../../src/inventory/index.js';
import { inventoryErrorsOf } from './fixtures.js';

/** The inventory (contract), with the LAN and host it needs. */
const POLICY = `gateways:
  gw-a1:
    host: 192.0.2.1
    lan: { interfaces: [eth0, eth9] }
    sticky: { timeout: 600 }
    links:
      - { name: fibre, interface: eth1, gateway: dhcp, weight: 3 }
      - { name: dsl,   interface: ppp0, gateway: none, weight: 1, probes: [192.0.2.53] }
      - { name: lte,   interface: wwan0, gateway: 198.51.100.9, weight: 1, tier: 2 }
    rules:
      - { name: voip, proto: udp, dport: [5060, "10000-20000"], via: [dsl] }
      - { name: office, dst: [203.0.113.0/24], via: main }
      - { name: bulk, src: [192.0.2.128/25], via: [fibre, lte] }
`;


const withRule = (rule: string) => POLICY.replace('      - { name: bulk', `      - ${rule}\n      - { name: bulk`);

describe('tiers, sticky and rules in the inventory', () => {
  it("reads the issue's inventory: tiers (default 1), sticky timeout, rules in order", () => {
    const [gw] = parseInventoryText(POLICY, 'site.yml').gateways;
    expect(gw!.links.map((l) => [l.name, l.tier])).toEqual([['fibre', 1], ['dsl', 1], ['lte', 2]]);
    expect(gw!.sticky).toEqual({ timeoutS: 600 });
    expect(gw!.rules).toEqual([
      { name: 'voip', src: [], dst: [], proto: 'udp', sport: [], dport: [{ from: 5060, to: 5060 }, { from: 10000, to: 20000 }], lan: [], via: { kind: 'links', links: ['dsl'] }, fallback: 'balance', source: 'site.yml:11' },
      { name: 'office', src: [], dst: ['203.0.113.0/24'], proto: null, sport: [], dport: [], lan: [], via: { kind: 'main' }, fallback: 'balance', source: 'site.yml:12' },
      { name: 'bulk', src: ['192.0.2.128/25'], dst: [], proto: null, sport: [], dport: [], lan: [], via: { kind: 'links', links: ['fibre', 'lte'] }, fallback: 'balance', source: 'site.yml:13' },
    ]);
    expect(gw!.warnings).toEqual([]);
  });

  it.each([
    ['a via link that does not exist', '{ name: x, via: [cable] }', /site\.yml:13: gateways\.gw-a1\.rules\[2\]\.via\[0\]: no link called "cable"/],
    ['ports without tcp or udp', '{ name: x, dport: [53], via: main }', /rules\[2\]\.dport: ports need proto: tcp or udp/],
    ['a LAN interface the gateway does not balance', '{ name: x, lan: [eth7], via: main }', /rules\[2\]\.lan\[0\]: "eth7" is not one of lan\.interfaces/],
    ['host bits in a prefix', '{ name: x, dst: [203.0.113.5/24], via: main }', /rules\[2\]\.dst\[0\]: must be an IPv4 address or prefix .* without host bits/],
    ['a backwards port range', '{ name: x, proto: tcp, dport: ["90-80"], via: main }', /rules\[2\]\.dport\[0\]: must be a port 1-65535 or a range/],
    ['a name used twice', '{ name: voip, via: main }', /rules\[2\]\.name: rule name "voip" is already used by rules\[0\]/],
    ['a fallback on via main', '{ name: x, via: main, fallback: drop }', /rules\[2\]\.fallback: only a rule with via links has a fallback/],
    ['overlapping prefixes in one list', '{ name: x, dst: [198.51.100.0/24, 198.51.100.128/25], via: main }', /rules\[2\]\.dst\[1\]: overlaps dst\[0\] of the same rule/],
    ['an unknown key', '{ name: x, via: main, port: 80 }', /rules\[2\]: unknown key "port"|rules\[2\]\.port/],
  ])('refuses %s, naming file, line and key', (_what, rule, message) => {
    expect(inventoryErrorsOf(withRule(rule))).toMatch(message);
  });

  it('refuses a tier outside 1-5, a sticky timeout outside 10-86400, and condition failover with rules', () => {
    expect(inventoryErrorsOf(POLICY.replace('tier: 2', 'tier: 6'))).toMatch(/site\.yml:9: gateways\.gw-a1\.links\[2\]\.tier: must be an integer from 1 to 5/);
    expect(inventoryErrorsOf(POLICY.replace('timeout: 600', 'timeout: 5'))).toMatch(/site\.yml:5: gateways\.gw-a1\.sticky\.timeout: must be an integer from 10 to 86400/);
    expect(inventoryErrorsOf(POLICY.replace('    sticky:', '    failover: condition\n    sticky:'))).toMatch(/gateways\.gw-a1\.failover: the condition mechanism balances one pool/);
  });

  it('warns about a rule an earlier one shadows, and one on the same fields whose values overlap another with a different via', () => {
    const text = POLICY.replace(
      '      - { name: bulk',
      '      - { name: lab, dst: [203.0.113.64/26], proto: tcp, via: [fibre] }\n      - { name: sip, proto: udp, dport: [5060], src: [192.0.2.0/24], via: [lte] }\n      - { name: rtp, proto: udp, dport: ["16000-30000"], via: [lte] }\n      - { name: bulk',
    );
    const [gw] = parseInventoryText(text, 'site.yml').gateways;
    expect(gw!.warnings).toEqual([
      'site.yml:13: gateways.gw-a1.rules[2]: rule lab never matches: rule office (rules[1]) takes every connection it would',
      'site.yml:14: gateways.gw-a1.rules[3]: rule sip never matches: rule voip (rules[0]) takes every connection it would',
      'site.yml:15: gateways.gw-a1.rules[4]: rule rtp overlaps rule voip (rules[0]), which goes via dsl: the first match wins',
    ]);
  });
});
