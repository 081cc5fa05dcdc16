/**
 * Rules and sticky sources in iptables, written the way iptables-save prints them (measured:
 * test/firewall/iptables/policy.test.ts): one rule per source, destination and LAN interface
 * (iptables has no address lists), ports through multiport (15 a rule, a range counting two),
 * sticky sources in an xt_recent list per link (`--mask 255.255.255.255` is what save adds).
 */
import { InputError } from '../../errors.js';
import type { GatewaySpec, PolicyRule, PortRange } from '../../model/inventory.js';
import { hex } from '../../model/ownership.js';

/** Past this many iptables rules for one policy rule the inventory gets an error, not a huge chain. */
const MAX_LINES_PER_RULE = 256;
const MULTIPORT_SLOTS = 15;

function portText(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}:${r.to}`;
}

/** Ports in multiport lists of at most 15 slots (a range takes two). */
function portChunks(ranges: readonly PortRange[]): string[] {
  const chunks: string[][] = [];
  let slots = MULTIPORT_SLOTS;
  for (const r of ranges) {
    const need = r.from === r.to ? 1 : 2;
    if (slots + need > MULTIPORT_SLOTS) {
      chunks.push([]);
      slots = 0;
    }
    chunks.at(-1)!.push(portText(r));
    slots += need;
  }
  return chunks.map((c) => c.join(','));
}

/** A field's options, or one empty option when the field is absent. */
const orNone = (options: string[]) => (options.length ? options : ['']);

/** The lines (after `-A LBPROV_PRE `) that send the rule's new LAN connections to its chain, or back to main. */
export function iptablesRuleLines(gw: Pick<GatewaySpec, 'lanInterfaces' | 'markMask'>, rule: PolicyRule, index: number): string[] {
  const guard = `-m conntrack --ctstate NEW -m mark --mark 0x0/${hex(gw.markMask)}`;
  const target = rule.via.kind === 'main' ? '-j RETURN' : `-j LBPROV_RULE${index + 1}`;
  const lines: string[] = [];
  // In save order: -s, -d, -i, -p, then the matches.
  for (const src of orNone(rule.src.map((x) => `-s ${x}`))) {
    for (const dst of orNone(rule.dst.map((x) => `-d ${x}`))) {
      for (const lan of (rule.lan.length ? rule.lan : gw.lanInterfaces).map((x) => `-i ${x}`)) {
        for (const sport of orNone(portChunks(rule.sport).map((p) => `-m multiport --sports ${p}`))) {
          for (const dport of orNone(portChunks(rule.dport).map((p) => `-m multiport --dports ${p}`))) {
            lines.push([src, dst, lan, rule.proto ? `-p ${rule.proto}` : '', guard, sport, dport, target].filter(Boolean).join(' '));
          }
        }
      }
    }
  }
  if (lines.length > MAX_LINES_PER_RULE) {
    throw new InputError(rule.source, `rules.${rule.name}`, `becomes ${lines.length} iptables rules (sources x destinations x LAN interfaces x port lists); at most ${MAX_LINES_PER_RULE}: use fewer entries, or the nftables backend`);
  }
  return lines;
}

export interface IptablesView {
  /** Per rule, its dispatch lines in LBPROV_PRE. */
  rules: { name: string; lines: string[] }[];
  /** With rules, the balance jump is guarded too: a connection a rule marked is not balanced again. */
  guardBalance: boolean;
}

export function iptablesView(gw: Pick<GatewaySpec, 'lanInterfaces' | 'markMask' | 'rules'>): IptablesView {
  return { rules: gw.rules.map((rule, i) => ({ name: rule.name, lines: iptablesRuleLines(gw, rule, i) })), guardBalance: gw.rules.length > 0 };
}

/** xt_recent's list of the sources sticking to link `index` (from 1). */
export function recentList(index: number): string {
  return `LBPROV_S${index}`;
}

/** The monitor empties a dead link's list: its sources spread again at once. */
export function iptablesStickyFlush(index: number): string {
  return `printf / > /proc/net/xt_recent/${recentList(index)}`;
}

export function iptablesStickyCount(index: number): string {
  return `wc -l < /proc/net/xt_recent/${recentList(index)} 2>/dev/null || echo 0`;
}
