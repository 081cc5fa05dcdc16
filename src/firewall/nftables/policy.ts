/**
 * Rules and sticky sources in nftables, in the form nft 1.0.6 prints them back (measured:
 * test/firewall/nftables/policy.test.ts): a single value without braces, a set sorted by its
 * first value, a /32 as a plain address, `udp dport` implying the protocol, a timeout as 10m.
 */
import type { GatewaySpec, PolicyRule, PortRange } from '../../model/inventory.js';
import { NFT_TABLE } from '../../model/ownership.js';

function addressValue(prefix: string): string {
  return prefix.endsWith('/32') ? prefix.slice(0, -3) : prefix;
}

function addressKey(prefix: string): number {
  return prefix
    .split('/')[0]!
    .split('.')
    .reduce((v, octet) => v * 256 + Number(octet), 0);
}

function portValue(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

/** `x` or `{ x, y }`, sorted the way nft lists an anonymous set. */
function values<T>(items: readonly T[], key: (t: T) => number, text: (t: T) => string): string {
  const sorted = [...items].sort((a, b) => key(a) - key(b)).map(text);
  return sorted.length === 1 ? sorted[0]! : `{ ${sorted.join(', ')} }`;
}

/** The match part of a rule's dispatch line (empty: it matches every new LAN connection). */
export function nftRuleMatch(rule: PolicyRule): string {
  const parts: string[] = [];
  if (rule.src.length) parts.push(`ip saddr ${values(rule.src, addressKey, addressValue)}`);
  if (rule.dst.length) parts.push(`ip daddr ${values(rule.dst, addressKey, addressValue)}`);
  const ports = rule.sport.length > 0 || rule.dport.length > 0;
  if (rule.proto && ports) {
    if (rule.sport.length) parts.push(`${rule.proto} sport ${values(rule.sport, (r) => r.from, portValue)}`);
    if (rule.dport.length) parts.push(`${rule.proto} dport ${values(rule.dport, (r) => r.from, portValue)}`);
  } else if (rule.proto) parts.push(`meta l4proto ${rule.proto}`);
  return parts.join(' ');
}

/** 600 -> "10m", 90 -> "1m30s", 86400 -> "1d": how nft prints a duration. */
export function nftDuration(seconds: number): string {
  const units: [string, number][] = [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]];
  let rest = seconds;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out || '0s';
}

/** The set of sources sticking to a link; its name carries the timeout, so a new timeout is a new set. */
export function stickySetName(link: string, timeoutS: number): string {
  return `sticky_${link}_${timeoutS}`;
}

export interface NftRuleDispatchView {
  name: string;
  /** The LAN interfaces it applies to. */
  lans: string[];
  /** ' udp dport 5060' (leading space) or ''. */
  match: string;
  /** `goto rule_<name>` or `return` (via main: not balanced). */
  action: string;
}

export function nftRuleDispatch(gw: Pick<GatewaySpec, 'rules' | 'lanInterfaces'>): NftRuleDispatchView[] {
  return gw.rules.map((rule) => {
    const match = nftRuleMatch(rule);
    return {
      name: rule.name,
      lans: rule.lan.length ? rule.lan : gw.lanInterfaces,
      match: match ? ` ${match}` : '',
      action: rule.via.kind === 'main' ? 'return' : `goto rule_${rule.name}`,
    };
  });
}

/** The monitor empties a dead link's sticky set: its sources spread again at once. */
export function nftStickyFlush(link: string, timeoutS: number): string {
  return `nft flush set ip ${NFT_TABLE} ${stickySetName(link, timeoutS)}`;
}

/** Shell printing how many sources stick to the link now. */
export function nftStickyCount(link: string, timeoutS: number): string {
  return `nft list set ip ${NFT_TABLE} ${stickySetName(link, timeoutS)} 2>/dev/null | grep -oE '[0-9]+(\\.[0-9]+){3}' | wc -l`;
}
