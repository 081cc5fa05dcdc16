/**
 * What lbprov owns on a gateway besides its files (model/paths.ts), and how it numbers it:
 * the bits of the mark, the rule priorities, the routing tables, the names of its firewall
 * objects. Every layer asks here; nothing else decides these.
 */
import type { GatewaySpec } from './inventory.js';

/** iptables chains lbprov owns are named LBPROV_*. */
export const IPTABLES_CHAIN_PREFIX = 'LBPROV_';
export const IPTABLES_OWNED_CHAIN = /^LBPROV_[A-Z0-9_]{1,20}$/;
/** lbprov's own nftables table, one per address family (`table ip lbprov`). */
export const NFT_TABLE = 'lbprov';

/** Routing tables past the links lbprov may number later (room for links added later). */
const TABLES_OWNED = 16;
/** lbprov owns this many rule priorities from priority_base. */
const PRIORITIES_OWNED = 100;

export interface OwnedRanges {
  priorityFirst: number;
  priorityLast: number;
  tables: Set<number>;
}

/** Rule priorities [base, base+99]; tables base+1 .. base+16. */
export function ownedRanges(gw: Pick<GatewaySpec, 'tableBase' | 'priorityBase'>): OwnedRanges {
  const tables = new Set<number>();
  for (let i = 1; i <= TABLES_OWNED; i++) tables.add(gw.tableBase + i);
  return { priorityFirst: gw.priorityBase, priorityLast: gw.priorityBase + PRIORITIES_OWNED - 1, tables };
}

export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** Mark of link i (0-based): i+1 shifted into the mask's lowest bit. */
export function linkMark(markMask: number, index: number): number {
  const shift = Math.log2((markMask >>> 0) & -(markMask >>> 0));
  return ((index + 1) * 2 ** shift) >>> 0;
}

export function linkTable(gw: Pick<GatewaySpec, 'tableBase'>, index: number): number {
  return gw.tableBase + 1 + index;
}

/** Priorities inside [priorityBase, priorityBase+99]: suppress rule, then fwmark rules, then source rules. */
export function rulePriorities(gw: Pick<GatewaySpec, 'priorityBase'>, index: number): { mark: number; source: number } {
  return { mark: gw.priorityBase + 1 + index, source: gw.priorityBase + 11 + index };
}

/**
 * The gateway's own traffic (what it sends itself, `iif lo`) looks up this table after the
 * links' rules: it holds a default route through the best live link, so the gateway stays
 * reachable outwards when the main table's default goes through a dead link or is missing.
 */
export function ownTrafficTable(gw: Pick<GatewaySpec, 'tableBase'>): number {
  return gw.tableBase + TABLES_OWNED;
}

export function ownTrafficPriority(gw: Pick<GatewaySpec, 'priorityBase'>): number {
  return gw.priorityBase + 90;
}

export function suppressPriority(gw: Pick<GatewaySpec, 'priorityBase'>): number {
  return gw.priorityBase;
}
