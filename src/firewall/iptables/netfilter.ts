/**
 * The matches, targets and tables iptables rules use, each with the modules that provide it
 * and where iptables shows it registered (/proc/net/ip_tables_matches|targets).
 */
import type { IptablesFacts, ModuleFacts } from '../../model/facts.js';
import type { IptablesChainResource, Resource } from '../../model/resources.js';
import { ofKind } from '../../model/resources.js';
import { IPTABLES_CHAIN_PREFIX } from '../../model/ownership.js';
import type { KernelPiece } from '../kernel-pieces.js';

interface PieceInfo {
  modules: string[];
  config: string;
  install?: string;
  fallback?: string;
}

export const CONDITION_INSTALL = 'install xtables-addons (Debian/Ubuntu: apt install xtables-addons-dkms, which builds xt_condition for the running kernel)';

/** Matches and targets lbprov's templates use, and the usual ones a custom template might. */
const KNOWN: Record<string, PieceInfo> = {
  'match:mark': { modules: ['xt_mark'], config: 'CONFIG_NETFILTER_XT_MARK' },
  'target:MARK': { modules: ['xt_mark'], config: 'CONFIG_NETFILTER_XT_MARK' },
  'match:connmark': { modules: ['xt_connmark'], config: 'CONFIG_NETFILTER_XT_CONNMARK' },
  'target:CONNMARK': { modules: ['xt_connmark'], config: 'CONFIG_NETFILTER_XT_CONNMARK' },
  'match:conntrack': { modules: ['xt_conntrack'], config: 'CONFIG_NETFILTER_XT_MATCH_CONNTRACK' },
  'match:statistic': { modules: ['xt_statistic'], config: 'CONFIG_NETFILTER_XT_MATCH_STATISTIC' },
  'match:condition': {
    modules: ['xt_condition'],
    config: 'xtables-addons (not in mainline Linux)',
    install: CONDITION_INSTALL,
    fallback: 'with failover: auto (or chain-swap) lbprov uses chain-swap failover instead: the monitor swaps in pre-rendered balancing chains',
  },
  'target:MASQUERADE': { modules: ['xt_MASQUERADE', 'ipt_MASQUERADE'], config: 'CONFIG_NETFILTER_XT_TARGET_MASQUERADE' },
  'target:SNAT': { modules: ['xt_nat'], config: 'CONFIG_NETFILTER_XT_NAT' },
  'match:recent': { modules: ['xt_recent'], config: 'CONFIG_NETFILTER_XT_MATCH_RECENT' },
  'match:multiport': { modules: ['xt_multiport'], config: 'CONFIG_NETFILTER_XT_MATCH_MULTIPORT' },
  'match:tcp': { modules: ['xt_tcpudp'], config: 'CONFIG_NETFILTER_XTABLES' },
  'match:udp': { modules: ['xt_tcpudp'], config: 'CONFIG_NETFILTER_XTABLES' },
};

/** Verdicts built into x_tables itself. */
const STANDARD_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE']);

type Registry = Pick<IptablesFacts, 'registeredMatches' | 'registeredTargets'>;

function piece(kind: 'match' | 'target', name: string, registry: Registry): KernelPiece {
  const info = KNOWN[`${kind}:${name}`] ?? { modules: [`xt_${name}`], config: `CONFIG_NETFILTER_XT_${kind === 'match' ? 'MATCH' : 'TARGET'}_${name.toUpperCase()}` };
  const list = kind === 'match' ? registry.registeredMatches : registry.registeredTargets;
  return {
    id: `${kind}:${name}`,
    label: `${name} ${kind}`,
    ...info,
    registered: list.includes(name) ? `registered in /proc/net/ip_tables_${kind === 'match' ? 'matches' : 'targets'}` : null,
    withoutModules: { present: false, detail: 'not registered, and this kernel has no loadable modules' },
  };
}

/** iptables-legacy uses one iptable_<table> module per table; iptables-nft uses nf_tables chains. */
function tablePiece(table: string, variant: IptablesFacts['variant']): KernelPiece {
  const info: PieceInfo =
    variant === 'nf_tables'
      ? table === 'nat'
        ? { modules: ['nft_chain_nat'], config: 'CONFIG_NFT_NAT' }
        : { modules: ['nf_tables'], config: 'CONFIG_NF_TABLES' }
      : { modules: [`iptable_${table}`], config: `CONFIG_IP_NF_${table.toUpperCase()}` };
  // Tables register nothing; the facts' iptables-save of the table already worked.
  return {
    id: `table:${table}`,
    label: `${table} table (${info.modules.join('/')})`,
    ...info,
    registered: null,
    withoutModules: { present: true, detail: 'built in (a kernel without loadable modules; iptables-save of the table works)' },
  };
}

const NO_REGISTRY: Registry = { registeredMatches: [], registeredTargets: [] };

/** Every match, target and table the rendered chains use, each once, in first-use order. */
export function piecesUsedBy(desired: readonly Resource[], facts: IptablesFacts | undefined): KernelPiece[] {
  const registry = facts ?? NO_REGISTRY;
  const pieces = new Map<string, KernelPiece>();
  const add = (p: KernelPiece) => {
    if (!pieces.has(p.id)) pieces.set(p.id, p);
  };
  const chains: IptablesChainResource[] = ofKind(desired, 'iptables-chain');
  for (const table of new Set(chains.map((c) => c.table))) add(tablePiece(table, facts?.variant ?? null));
  for (const rule of chains.flatMap((c) => c.rules)) {
    for (const m of rule.matchAll(/(?:^|\s)-m (\S+)/g)) add(piece('match', m[1]!, registry));
    const target = /(?:^|\s)-j (\S+)/.exec(rule)?.[1];
    if (target && !STANDARD_TARGETS.has(target) && !target.startsWith(IPTABLES_CHAIN_PREFIX)) add(piece('target', target, registry));
  }
  return [...pieces.values()];
}

/** The xtables-addons condition match, whether the rules use it or not. */
export function conditionPiece(facts: IptablesFacts | undefined): KernelPiece {
  return piece('match', 'condition', facts ?? NO_REGISTRY);
}

/** Where the xtables-addons condition match shows up in the facts, or null when it does not. */
export function conditionMatchSource(modules: ModuleFacts, facts: IptablesFacts | undefined): string | null {
  if (facts?.registeredMatches.includes('condition')) return 'registered in /proc/net/ip_tables_matches';
  if (modules.loaded?.includes('xt_condition')) return 'module xt_condition is loaded';
  if (modules.builtin?.includes('xt_condition')) return 'xt_condition is built into the kernel';
  if (modules.available?.includes('xt_condition')) return 'module xt_condition is installed';
  return null;
}
