/**
 * Which links take new connections, for one set of live links: the pool (tiers: only the live
 * links of the lowest tier that has any) and each rule's own pool over its `via` links (the same
 * tiers and failover within them, or its fallback when none is live). Backend-neutral: a
 * backend's templates turn these into chains.
 */
import type { GatewaySpec, LinkSpec, PolicyRule, PortRange } from '../model/inventory.js';
import { hex, linkMark } from '../model/ownership.js';
import { buildPool, type PoolView } from './pool.js';

/** A link of a pool whose sources stick to it: the lookup comes before the pool's counter. */
export interface StickyLinkView {
  name: string;
  /** From 1, the link's position in the inventory. */
  index: string;
  /** How long a source sticks without a new connection. */
  timeoutS: string;
  mark: string;
}

/** One chain's choice: sticky lookups, then the pool, or (no via link live) the fallback. */
export interface ChainPoolView {
  sticky: StickyLinkView[];
  /** Slots of a pool go to the pick chain (records the source) instead of straight to the mark. */
  pick: boolean;
  pool: PoolView | null;
  /** With no pool: hand the connection to the main pool, or drop it. */
  fallbackBalance: boolean;
  fallbackDrop: boolean;
}

export interface RuleChainView extends ChainPoolView {
  name: string;
  /** From 1, the rule's position among the gateway's rules. */
  index: string;
}

type IndexedLink = { index: number; weight: number; name: string; tier: number };

/** The links of `mask` (bit i = link i) in inventory order. */
export function linksOf(gw: Pick<GatewaySpec, 'links'>, mask: number): IndexedLink[] {
  return gw.links.map((l, index) => ({ index, weight: l.weight, name: l.name, tier: l.tier })).filter((l) => (mask >> l.index) & 1);
}

/** Of these live links, the ones of the lowest tier: higher tiers wait until it has none. */
export function lowestTier<T extends { tier: number }>(live: readonly T[]): T[] {
  const tier = Math.min(...live.map((l) => l.tier));
  return live.filter((l) => l.tier === tier);
}

function chainPool(gw: GatewaySpec, links: readonly IndexedLink[]): Pick<ChainPoolView, 'sticky' | 'pick' | 'pool'> {
  const chosen = links.length > 0 ? lowestTier(links) : [];
  return {
    sticky: gw.sticky ? chosen.map((l) => ({ name: l.name, index: String(l.index + 1), timeoutS: String(gw.sticky!.timeoutS), mark: hex(linkMark(gw.markMask, l.index)) })) : [],
    pick: gw.sticky !== null,
    pool: chosen.length > 0 ? buildPool(gw.markMask, chosen) : null,
  };
}

/** The main pool over the live links of `mask`. */
export function mainChain(gw: GatewaySpec, mask: number): ChainPoolView {
  return { ...chainPool(gw, linksOf(gw, mask)), fallbackBalance: false, fallbackDrop: false };
}

/** Each rule with `via` links: its pool over those of them that are live. */
export function ruleChains(gw: GatewaySpec, mask: number): RuleChainView[] {
  const live = linksOf(gw, mask);
  return gw.rules.flatMap((rule, i) => {
    if (rule.via.kind === 'main') return [];
    const via = rule.via.links;
    const chain = chainPool(gw, live.filter((l) => via.includes(l.name)));
    return [{ ...chain, name: rule.name, index: String(i + 1), fallbackBalance: !chain.pool && rule.fallback === 'balance', fallbackDrop: !chain.pool && rule.fallback === 'drop' }];
  });
}

/** "tier 1: fibre (3), dsl (1); tier 2: lte (1)". */
function describeTiers(links: readonly LinkSpec[]): string {
  const tiers = [...new Set(links.map((l) => l.tier))].sort((a, b) => a - b);
  return tiers.map((t) => `tier ${t}: ${links.filter((l) => l.tier === t).map((l) => `${l.name} (${l.weight})`).join(', ')}`).join('; ');
}

const ports = (ranges: readonly PortRange[]) => ranges.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(',');

/** "udp dport 5060,10000-20000 from 192.0.2.128/25 -> dsl (none live: the pool)". */
function describeRule(rule: PolicyRule): string {
  const match = [
    rule.proto ?? '',
    rule.sport.length ? `sport ${ports(rule.sport)}` : '',
    rule.dport.length ? `dport ${ports(rule.dport)}` : '',
    rule.src.length ? `from ${rule.src.join(',')}` : '',
    rule.dst.length ? `to ${rule.dst.join(',')}` : '',
    rule.lan.length ? `on ${rule.lan.join(',')}` : '',
  ].filter(Boolean);
  const via = rule.via.kind === 'main' ? 'the main table (not balanced)' : `${rule.via.links.join(', ')} (none live: ${rule.fallback === 'drop' ? 'dropped' : 'the pool'})`;
  return `rule ${rule.name}: ${match.join(' ') || 'every new LAN connection'} -> ${via}`;
}

/** The plan's notes on tiers, rules and stickiness; nothing for a plain weighted pool. */
export function describePolicy(gw: GatewaySpec): string[] {
  const notes: string[] = [];
  if (gw.links.some((l) => l.tier !== 1)) notes.push(`pool: ${describeTiers(gw.links)} (a higher tier takes over when every lower link is down)`);
  notes.push(...gw.rules.map(describeRule));
  if (gw.sticky) notes.push(`sticky: a LAN source keeps the link of its first balanced connection while it opens one at least every ${gw.sticky.timeoutS} s`);
  return notes;
}
