/**
 * The data templates see. Every scalar is a string: Handlebars 4.7 with
 * noEscape adds adjacent numbers ({{a}}{{b}} with 1 and 2 renders "3").
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import { weightedPool } from './pool.js';
import { RemoteError } from '../errors.js';
import { buildFailoverView, type FailoverView } from './failover-view.js';

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

export interface PoolView {
  every: string;
  slots: { packet: string; mark: string; link: string }[];
  /** Set instead of slots when one link is left: a plain MARK, no counter. */
  singleMark: string;
}

export interface BalancerView {
  gateway: string;
  markMask: string;
  suppressPriority: string;
  lanInterfaces: string[];
  links: LinkView[];
  failover: FailoverView;
}

export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** Mark of link i (0-based): i+1 shifted into the mask's lowest bit. */
export function linkMark(markMask: number, index: number): number {
  const shift = Math.log2((markMask >>> 0) & -(markMask >>> 0));
  return ((index + 1) * 2 ** shift) >>> 0;
}

export function linkTable(gw: GatewaySpec, index: number): number {
  return gw.tableBase + 1 + index;
}

/** Priorities inside [priorityBase, priorityBase+99]: suppress rule, then fwmark rules, then source rules. */
export function rulePriorities(gw: GatewaySpec, index: number): { mark: number; source: number } {
  return { mark: gw.priorityBase + 1 + index, source: gw.priorityBase + 11 + index };
}

export function primaryAddress(gw: GatewaySpec, facts: HostFacts, iface: string): string {
  const found = facts.interfaces.find((i) => i.name === iface);
  const address = found?.ipv4[0]?.split('/')[0];
  if (!address) {
    throw new RemoteError(`interface ${iface} has no IPv4 address (links need one for NAT and source routing)`, {
      host: gw.name,
      resource: `interface:${iface}`,
    }, 'prerequisite');
  }
  return address;
}

export function buildPool(markMask: number, links: { index: number; weight: number }[]): PoolView {
  const order = weightedPool(links.map((l) => l.weight));
  const marks = links.map((l) => hex(linkMark(markMask, l.index)));
  if (links.length === 1) return { every: '1', slots: [], singleMark: marks[0]! };
  return {
    every: String(order.length),
    slots: order.map((linkPos, packet) => ({
      packet: String(packet),
      mark: marks[linkPos]!,
      link: String(links[linkPos]!.index),
    })),
    singleMark: '',
  };
}

/**
 * The links the balancer should use, as the gateway's monitor last saw them
 * ("link.<name>=up|down"); links it does not mention count as up. With every
 * link down the monitor keeps the last live set (state "balanced="), and so
 * does lbprov; with no such record, all links: never a balancer with no link.
 */
export function healthyLinks(gw: GatewaySpec, facts: HostFacts): Set<string> {
  const state = facts.monitor.state;
  const up = gw.links.filter((l) => state[`link.${l.name}`] !== 'down').map((l) => l.name);
  if (up.length > 0) return new Set(up);
  const kept = (state.balanced ?? '').split(',').filter((name) => gw.links.some((l) => l.name === name));
  return new Set(kept.length > 0 ? kept : gw.links.map((l) => l.name));
}

/** With facts null (the pre-render that decides what the facts script reads), addresses are empty. */
export function buildBalancerView(gw: GatewaySpec, facts: HostFacts | null): BalancerView {
  const healthy = facts ? healthyLinks(gw, facts) : new Set(gw.links.map((l) => l.name));
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
    suppressPriority: String(gw.priorityBase),
    lanInterfaces: [...gw.lanInterfaces],
    links,
    ...buildFailoverView(gw, facts),
  };
}
