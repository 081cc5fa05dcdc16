import { InventoryErrors, parseInventoryText } from '../../src/inventory/index.js';

/** The inventory of the core issue, verbatim (it is a contract), with its line numbers. */
export const EXAMPLE_INVENTORY = `ssh:                           # defaults for every gateway; a gateway may override any key
  user: root
  port: 22
  identity_file: ~/.ssh/id_ed25519
  known_hosts: ~/.ssh/known_hosts
gateways:
  gw-a1:
    host: 192.0.2.1            # where SSH connects
    ssh: { port: 2222 }        # optional per-gateway override
    lan:
      interfaces: [eth0]       # one or more LAN-side interfaces whose new connections are balanced
    links:                     # two or more; the seed's case is two links weighted 3:1
      - name: isp1             # [a-z0-9_-], unique per gateway
        interface: eth1
        gateway: 198.51.100.1  # next hop
        weight: 3              # positive integer
        probes: [198.51.100.1] # health-check targets (used by failover, a later issue)
      - name: isp2
        interface: eth2
        gateway: 203.0.113.1
        weight: 1
        probes: [203.0.113.1]
groups:                        # optional
  paris: [gw-a1]
`;

/** The message of the InventoryErrors that parsing `text` (as site.yml) throws; fails when it parses. */
export function inventoryErrorsOf(text: string): string {
  try {
    parseInventoryText(text, 'site.yml');
  } catch (e) {
    if (e instanceof InventoryErrors) return e.message;
    throw e;
  }
  throw new Error('no error');
}

/** Replaces the one occurrence of `from` in `text`; fails loudly if the fixture drifted. */
export function mutate(text: string, from: string, to: string): string {
  const index = text.indexOf(from);
  if (index < 0 || text.indexOf(from, index + 1) >= 0) throw new Error(`fixture must contain ${JSON.stringify(from)} exactly once`);
  return text.slice(0, index) + to + text.slice(index + from.length);
}
