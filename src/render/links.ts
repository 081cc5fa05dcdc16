/** What the facts say about a gateway's links: where each one goes, and which ones balance. */
import type { HostFacts } from '../model/facts.js';
import type { GatewaySpec } from '../model/inventory.js';
import { linkRoute, resolveLinkPaths, type LinkPath } from '../routing/index.js';

/**
 * The links the balancer should use: ready ones the gateway's monitor last saw up
 * ("link.<name>=up|down"; links it does not mention count as up). With none of them the
 * monitor keeps the last live set (state "balanced="), and so does lbprov; with no such
 * record, all links: never a balancer with no link.
 */
export function healthyLinks(gw: GatewaySpec, facts: HostFacts | null, paths: readonly LinkPath[] | null = facts && resolveLinkPaths(gw, facts)): Set<string> {
  if (!facts || !paths) return new Set(gw.links.map((l) => l.name));
  const state = facts.monitor.state;
  const up = gw.links.filter((l, i) => paths[i]!.ready && state[`link.${l.name}`] !== 'down').map((l) => l.name);
  if (up.length > 0) return new Set(up);
  const kept = (state.balanced ?? '').split(',').filter((name) => gw.links.some((l) => l.name === name));
  return new Set(kept.length > 0 ? kept : gw.links.map((l) => l.name));
}

/**
 * The default route of the gateway's own traffic: through the heaviest healthy ready link of the
 * lowest tier (the first on a tie), or none when the main table's default goes elsewhere (a VPN,
 * a link lbprov does not balance): then the main table decides, as before lbprov.
 */
export function ownTrafficRoute(gw: GatewaySpec, facts: HostFacts, paths: readonly LinkPath[], healthy: ReadonlySet<string>): string {
  const main = [...facts.mainDefaultRoutes].sort((a, b) => a.metric - b.metric)[0];
  if (main && !gw.links.some((l) => l.interface === main.dev)) return '';
  let best = -1;
  gw.links.forEach((l, i) => {
    if (!paths[i]!.ready || !healthy.has(l.name)) return;
    const current = gw.links[best];
    if (!current || l.tier < current.tier || (l.tier === current.tier && l.weight > current.weight)) best = i;
  });
  return best < 0 ? '' : linkRoute(gw.links[best]!, paths[best]!.nextHop);
}
