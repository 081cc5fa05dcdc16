/** What the facts say about a gateway's links: their addresses, and which ones the monitor sees up. */
import type { HostFacts } from '../model/facts.js';
import type { GatewaySpec } from '../model/inventory.js';
import { RemoteError } from '../errors.js';

export function primaryAddress(gw: GatewaySpec, facts: HostFacts, iface: string): string {
  const found = facts.interfaces.find((i) => i.name === iface);
  const address = found?.ipv4[0]?.split('/')[0];
  if (!address) {
    throw new RemoteError(`interface ${iface} has no IPv4 address (links need one for NAT and source routing)`, { host: gw.name, resource: `interface:${iface}` }, 'prerequisite');
  }
  return address;
}

/**
 * The links the balancer should use, as the gateway's monitor last saw them
 * ("link.<name>=up|down"); links it does not mention count as up. With every
 * link down the monitor keeps the last live set (state "balanced="), and so
 * does lbprov; with no such record, all links: never a balancer with no link.
 */
export function healthyLinks(gw: GatewaySpec, facts: HostFacts | null): Set<string> {
  if (!facts) return new Set(gw.links.map((l) => l.name));
  const state = facts.monitor.state;
  const up = gw.links.filter((l) => state[`link.${l.name}`] !== 'down').map((l) => l.name);
  if (up.length > 0) return new Set(up);
  const kept = (state.balanced ?? '').split(',').filter((name) => gw.links.some((l) => l.name === name));
  return new Set(kept.length > 0 ? kept : gw.links.map((l) => l.name));
}
