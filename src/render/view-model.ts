/**
 * The data templates see. Every scalar is a string: Handlebars 4.7 with
 * noEscape adds adjacent numbers ({{a}}{{b}} with 1 and 2 renders "3").
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import { hex, linkMark, linkTable, ownTrafficPriority, ownTrafficTable, rulePriorities, suppressPriority } from '../model/ownership.js';
import type { FirewallBackend } from '../firewall/index.js';
import { resolveLinkPaths, UNREACHABLE_ROUTE } from '../routing/index.js';
import { buildFailoverView, type FailoverView } from './failover-view.js';
import { healthyLinks, ownTrafficRoute } from './links.js';

export interface LinkView {
  name: string;
  index: string;
  interface: string;
  /** Interface name as sysctl(8) writes it in a key: dots become slashes. */
  sysctlInterface: string;
  /** static, dhcp or none (point-to-point). */
  kind: string;
  /** The link table's default route (routing/next-hop.ts): through the link, or unreachable. */
  route: string;
  /** The link's IPv4 address, read from the gateway; '' while it has none (no source rule then). */
  address: string;
  /** The interface exists now (its per-interface settings can be written; else the monitor writes them when it appears). */
  present: boolean;
  weight: string;
  mark: string;
  table: string;
  markPriority: string;
  sourcePriority: string;
  healthy: boolean;
}

/** The firewall backend the gateway uses, for the templates that differ by it. */
export interface FirewallView {
  backend: string;
  /** The monitor's command that swaps a balancing payload in (stdin). */
  swapCommand: string;
  /** restore.sh's `restore_firewall FILE` function, and the file it restores from. */
  bootRestore: string;
  bootPayloadPath: string;
  /** What only this backend's templates use (backend.templateView). */
  view: object;
}

/** The gateway's own traffic (iif lo): a rule to a table with one default route, or none. */
export interface OwnTrafficView {
  priority: string;
  table: string;
  /** '' when the main table's default is not through a link: the table stays empty. */
  route: string;
}

export interface BalancerView {
  gateway: string;
  ownTraffic: OwnTrafficView;
  markMask: string;
  suppressPriority: string;
  lanInterfaces: string[];
  /** The interfaces of `gateway: dhcp` links (the dhclient hook records their leases). */
  dhcpInterfaces: string[];
  links: LinkView[];
  firewall: FirewallView;
  failover: FailoverView;
}

/**
 * `now`: the balancer for the gateway as the facts show it. `boot`: what restore.sh brings back
 * after a reboot, before the monitor has looked at anything: every link in the pool, no source
 * rules (the monitor adds the tables and rules the links then need). Boot files so depend on no
 * address, lease or link health, and nothing the gateway changes by itself is drift in them.
 * With facts null (the pre-render that decides what the facts script reads), addresses are empty.
 */
export function buildBalancerView(gw: GatewaySpec, backend: FirewallBackend, facts: HostFacts | null, mode: 'now' | 'boot' = 'now'): BalancerView {
  const paths = facts && mode === 'now' ? resolveLinkPaths(gw, facts) : null;
  const healthy = mode === 'boot' ? new Set(gw.links.map((l) => l.name)) : healthyLinks(gw, facts, paths);
  const links = gw.links.map((l, i): LinkView => {
    const prio = rulePriorities(gw, i);
    const path = paths?.[i];
    return {
      name: l.name,
      index: String(i + 1),
      interface: l.interface,
      sysctlInterface: l.interface.replaceAll('.', '/'),
      kind: l.nextHop.kind,
      route: path?.route ?? UNREACHABLE_ROUTE,
      address: path?.address ?? '',
      present: !paths || facts!.interfaces.some((f) => f.name === l.interface),
      weight: String(l.weight),
      mark: hex(linkMark(gw.markMask, i)),
      table: String(linkTable(gw, i)),
      markPriority: String(prio.mark),
      sourcePriority: String(prio.source),
      healthy: healthy.has(l.name),
    };
  });
  return {
    gateway: gw.name,
    ownTraffic: {
      priority: String(ownTrafficPriority(gw)),
      table: String(ownTrafficTable(gw)),
      route: facts && paths ? ownTrafficRoute(gw, facts, paths, healthy) : '',
    },
    markMask: hex(gw.markMask),
    suppressPriority: String(suppressPriority(gw)),
    lanInterfaces: [...gw.lanInterfaces],
    dhcpInterfaces: gw.links.filter((l) => l.nextHop.kind === 'dhcp').map((l) => l.interface),
    links,
    firewall: {
      backend: backend.name,
      swapCommand: backend.swapCommand,
      bootRestore: backend.bootRestore,
      bootPayloadPath: backend.bootPayload([]).path,
      view: backend.templateView(gw),
    },
    ...buildFailoverView(gw, backend, facts, healthy),
  };
}
