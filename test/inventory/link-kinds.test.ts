import { describe, expect, it } from 'vitest';
import { parseInventoryText } from '../../src/inventory/index.js';
import { inventoryErrorsOf } from './fixtures.js';

/** The inventory for DHCP and point-to-point links, with a static third one. */
const DYNAMIC = `gateways:
  gw-a1:
    host: 192.0.2.1
    lan: { interfaces: [eth0] }
    links:
      - name: fibre
        interface: eth1
        gateway: dhcp
        weight: 3
      - name: dsl
        interface: ppp0
        gateway: none
        weight: 1
        probes: [192.0.2.53]
      - name: lte
        interface: wwan0
        gateway: 198.51.100.9
        weight: 1
`;


describe('link kinds: gateway dhcp, none or a next hop', () => {
  it('reads each kind; probes default to the next hop, and to the learned router (none listed) for dhcp', () => {
    const [gw] = parseInventoryText(DYNAMIC, 'site.yml').gateways;
    expect(gw!.links.map((l) => [l.name, l.nextHop, l.probes])).toEqual([
      ['fibre', { kind: 'dhcp' }, []],
      ['dsl', { kind: 'none' }, ['192.0.2.53']],
      ['lte', { kind: 'static', address: '198.51.100.9' }, ['198.51.100.9']],
    ]);
  });

  it('refuses a point-to-point link without probes, naming file, line and key', () => {
    const text = DYNAMIC.replace('        probes: [192.0.2.53]\n', '');
    expect(inventoryErrorsOf(text)).toMatch(/site\.yml:12: gateways\.gw-a1\.links\[1\]\.gateway: a point-to-point link \(gateway: none\) has no next hop to probe: list its probes/);
  });

  it('refuses other words and non-unicast next hops with the choices in the message', () => {
    for (const word of ['DHCP', 'ppp', '224.0.0.1', '']) {
      expect(inventoryErrorsOf(DYNAMIC.replace('gateway: dhcp', `gateway: "${word}"`))).toMatch(
        /site\.yml:8: gateways\.gw-a1\.links\[0\]\.gateway: must be a unicast IPv4 next hop, "dhcp" .* or "none"/,
      );
    }
  });

  it('checks reliability against the one learned router of a DHCP link without probes', () => {
    const text = DYNAMIC.replace('        weight: 3\n', '        weight: 3\n        monitor: { reliability: 2 }\n');
    expect(inventoryErrorsOf(text)).toMatch(/reliability 2 needs more probes than the 1 of gateways\.gw-a1\.links\[0\]/);
  });

  it("refuses a table_base whose own-traffic table (base + 16) would be the kernel's", () => {
    expect(inventoryErrorsOf(DYNAMIC.replace('    host: 192.0.2.1\n', '    host: 192.0.2.1\n    table_base: 238\n'))).toMatch(/routing tables 239, 240, 241, 254 .* must avoid 253-255/);
  });
});
