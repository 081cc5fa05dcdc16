/**
 * Where each link's traffic goes, from the facts: its address (always the gateway's), its next
 * hop (the inventory's, the DHCP client's, or none on a point-to-point link) and whether it can
 * carry traffic now. The link monitor (templates/monitor/links.partial.hbs) applies the same
 * rule on the gateway whenever an interface, address, lease or route changes, so what it
 * derived and what a later plan renders from the same facts agree.
 *
 * The rule for a DHCP link's router: the lease lbprov's dhclient hook recorded, when its address
 * is still the interface's; else the lowest-metric main-table default route through the
 * interface (what dhcpcd, udhcpc, systemd-networkd and NetworkManager install).
 */
import type { HostFacts, MainDefaultRoute } from '../model/facts.js';
import type { GatewaySpec, LinkSpec } from '../model/inventory.js';

export type NextHopSource = 'inventory' | 'dhcp-lease' | 'main-route' | 'point-to-point';

export interface LinkPath {
  /** The link's IPv4 address, or null when its interface is missing or has none yet. */
  address: string | null;
  /** Null for a point-to-point link, and while a DHCP link's router is not known. */
  nextHop: string | null;
  source: NextHopSource | null;
  /** Interface present, up with carrier, with an address and (unless point-to-point) a next hop. */
  ready: boolean;
  /** Why the link is not ready, in words; '' when it is. */
  reason: string;
  /** The link table's default route: through the link, or `unreachable` while it is not ready. */
  route: string;
}

export const UNREACHABLE_ROUTE = 'unreachable default';

export function linkRoute(link: Pick<LinkSpec, 'interface'>, nextHop: string | null): string {
  return nextHop ? `default via ${nextHop} dev ${link.interface}` : `default dev ${link.interface}`;
}

/** The main table's default through `iface` with the lowest metric (the one the kernel uses). */
export function mainDefaultVia(routes: readonly MainDefaultRoute[], iface: string): string | null {
  const through = routes.filter((r) => r.dev === iface && r.via !== null).sort((a, b) => a.metric - b.metric);
  return through[0]?.via ?? null;
}

export function resolveLinkPath(link: LinkSpec, facts: HostFacts): LinkPath {
  const found = facts.interfaces.find((i) => i.name === link.interface);
  const address = found?.ipv4[0]?.split('/')[0] ?? null;
  let nextHop: string | null = null;
  let source: NextHopSource | null = null;
  if (link.nextHop.kind === 'static') {
    nextHop = link.nextHop.address;
    source = 'inventory';
  } else if (link.nextHop.kind === 'none') {
    source = 'point-to-point';
  } else {
    const lease = facts.dhcpLeases[link.interface];
    if (lease && address !== null && lease.address === address) {
      nextHop = lease.router;
      source = 'dhcp-lease';
    } else {
      nextHop = mainDefaultVia(facts.mainDefaultRoutes, link.interface);
      source = nextHop ? 'main-route' : null;
    }
  }
  const reason = !found
    ? `interface ${link.interface} does not exist`
    : !found.up
      ? `interface ${link.interface} is down or has no carrier`
      : address === null
        ? `interface ${link.interface} has no IPv4 address`
        : link.nextHop.kind === 'dhcp' && nextHop === null
          ? `no DHCP lease or default route for ${link.interface} yet`
          : '';
  const ready = reason === '';
  return { address, nextHop, source, ready, reason, route: ready ? linkRoute(link, nextHop) : UNREACHABLE_ROUTE };
}

export function resolveLinkPaths(gw: Pick<GatewaySpec, 'links'>, facts: HostFacts): LinkPath[] {
  return gw.links.map((link) => resolveLinkPath(link, facts));
}

/** "fibre: next hop 198.51.100.1 learned from the DHCP lease of eth1", for plans and status. */
export function describeLinkPath(link: LinkSpec, path: LinkPath): string {
  const where = path.address ? ` (address ${path.address})` : '';
  if (!path.ready) {
    return `${link.name}: not ready (${path.reason}); its table holds "${UNREACHABLE_ROUTE}" and the monitor adds the link when it comes up`;
  }
  switch (path.source) {
    case 'dhcp-lease':
      return `${link.name}: next hop ${path.nextHop} learned from the DHCP lease of ${link.interface}${where}`;
    case 'main-route':
      return `${link.name}: next hop ${path.nextHop} learned from the DHCP default route of ${link.interface}${where}`;
    case 'point-to-point':
      return `${link.name}: point-to-point on ${link.interface}${where}, no next hop`;
    default:
      return `${link.name}: next hop ${path.nextHop} on ${link.interface}${where}`;
  }
}
