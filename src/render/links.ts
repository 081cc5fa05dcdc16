/** What the facts say about a gateway's links: where each one goes, and which ones balance. */
import type { HostFacts } from '../model/facts.js';
import type { GatewaySpec } from '../model/inventory.js';
import { linkRoute, resolveLinkPaths, type LinkPath } from '../routing/index.js';

/**
 * The links the balancer should use, as the gateway's monitor does (templates/monitor/pool.partial.hbs):
 * the ready ones it last saw up ("link.<name>=up|degraded|down"; links it does not mention count as
 * up); with none, the ready degraded ones (a slow link is better than none); with none of those it
 * keeps the last live set (state "balanced="), and so does lbprov; with no such record, all links:
 * never a balancer with no link.
 */
export function healthyLinks(gw: GatewaySpec, facts: HostFacts | null, paths: readonly LinkPath[] | null = facts && resolveLinkPaths(gw, facts)): Set<string> {
  if (!facts || !paths) return new Set(gw.links.map((l) => l.name));
  const state = facts.monitor.state;
  const health = (name: string) => state[`link.${name}`] ?? 'up';
  const ready = gw.links.filter((_, i) => paths[i]!.ready);
  for (const wanted of ['up', 'degraded']) {
    const live = ready.filter((l) => (wanted === 'up' ? !['down', 'degraded'].includes(health(l.name)) : health(l.name) === 'degraded')).map((l) => l.name);
    if (live.length > 0) return new Set(live);
  }
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
