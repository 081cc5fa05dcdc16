/**
 * The data templates see. Every scalar is a string: Handlebars 4.7 with
 * noEscape adds adjacent numbers ({{a}}{{b}} with 1 and 2 renders "3").
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import { hex, linkMark, linkTable, rulePriorities, suppressPriority } from '../model/ownership.js';
import type { FirewallBackend } from '../firewall/index.js';
import { buildFailoverView, type FailoverView } from './failover-view.js';
import { healthyLinks, primaryAddress } from './links.js';

export interface LinkView {
  name: string;
  index: string;
  interface: string;
  /** Interface name as sysctl(8) writes it in a key: dots become slashes. */
  sysctlInterface: string;
  nextHop: string;
  /** The link's IPv4 address, read from the gateway. */
  address: string;
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

export interface BalancerView {
  gateway: string;
  markMask: string;
  suppressPriority: string;
  lanInterfaces: string[];
  links: LinkView[];
  firewall: FirewallView;
  failover: FailoverView;
}

/** With facts null (the pre-render that decides what the facts script reads), addresses are empty. */
export function buildBalancerView(gw: GatewaySpec, backend: FirewallBackend, facts: HostFacts | null): BalancerView {
  const healthy = healthyLinks(gw, facts);
  const links = gw.links.map((l, i): LinkView => {
    const prio = rulePriorities(gw, i);
    return {
      name: l.name,
      index: String(i + 1),
      interface: l.interface,
      sysctlInterface: l.interface.replaceAll('.', '/'),
      nextHop: l.gateway,
      address: facts ? primaryAddress(gw, facts, l.interface) : '',
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
    markMask: hex(gw.markMask),
    suppressPriority: String(suppressPriority(gw)),
    lanInterfaces: [...gw.lanInterfaces],
    links,
    firewall: {
      backend: backend.name,
      swapCommand: backend.swapCommand,
      bootRestore: backend.bootRestore,
      bootPayloadPath: backend.bootPayload([]).path,
      view: backend.templateView(gw.markMask, gw.links),
    },
    ...buildFailoverView(gw, backend, facts),
  };
}
