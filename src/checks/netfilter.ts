/**
 * The netfilter pieces a gateway's rendered rules use (matches, targets,
 * tables) and where each one is on the gateway's kernel: registered, loaded,
 * built in, loadable, or missing. Kernels differ: a kernel without module
 * support has no /proc/modules and no /lib/modules, and what it has shows only
 * in /proc/net/ip_tables_matches|targets.
 */
import type { ModuleFacts } from '../model/facts.js';
import type { ChainResource, Resource } from '../model/resources.js';
import type { CheckResult } from './types.js';

export type PieceKind = 'match' | 'target' | 'table';

export interface NetfilterPiece {
  kind: PieceKind;
  /** As iptables names it: "statistic", "MASQUERADE", "nat". */
  name: string;
  /** Modules that provide it, preferred first (older kernels name some differently). */
  modules: string[];
  /** Kernel option to ask for when no module provides it. */
  config: string;
  /** What to install when it is missing, when that is a package rather than a kernel option. */
  install?: string;
  /** What lbprov does without it, when there is a fallback. */
  fallback?: string;
}

export type PieceState =
  | { state: 'registered' | 'loaded' | 'builtin'; module?: string; detail: string }
  | { state: 'loadable'; module: string; detail: string }
  | { state: 'unknown' | 'missing'; detail: string };

const CONDITION_INSTALL = 'install xtables-addons (Debian/Ubuntu: apt install xtables-addons-dkms, which builds xt_condition for the running kernel)';

/** Matches and targets lbprov's templates use, and the usual ones a custom template might. */
const KNOWN: Record<string, Omit<NetfilterPiece, 'name'>> = {
  'match:mark': { kind: 'match', modules: ['xt_mark'], config: 'CONFIG_NETFILTER_XT_MARK' },
  'target:MARK': { kind: 'target', modules: ['xt_mark'], config: 'CONFIG_NETFILTER_XT_MARK' },
  'match:connmark': { kind: 'match', modules: ['xt_connmark'], config: 'CONFIG_NETFILTER_XT_CONNMARK' },
  'target:CONNMARK': { kind: 'target', modules: ['xt_connmark'], config: 'CONFIG_NETFILTER_XT_CONNMARK' },
  'match:conntrack': { kind: 'match', modules: ['xt_conntrack'], config: 'CONFIG_NETFILTER_XT_MATCH_CONNTRACK' },
  'match:statistic': { kind: 'match', modules: ['xt_statistic'], config: 'CONFIG_NETFILTER_XT_MATCH_STATISTIC' },
  'match:condition': {
    kind: 'match',
    modules: ['xt_condition'],
    config: 'xtables-addons (not in mainline Linux)',
    install: CONDITION_INSTALL,
    fallback: 'with failover: auto (or chain-swap) lbprov uses chain-swap failover instead: the monitor swaps in pre-rendered balancing chains',
  },
  'target:MASQUERADE': { kind: 'target', modules: ['xt_MASQUERADE', 'ipt_MASQUERADE'], config: 'CONFIG_NETFILTER_XT_TARGET_MASQUERADE' },
  'target:SNAT': { kind: 'target', modules: ['xt_nat'], config: 'CONFIG_NETFILTER_XT_NAT' },
  'match:tcp': { kind: 'match', modules: ['xt_tcpudp'], config: 'CONFIG_NETFILTER_XTABLES' },
  'match:udp': { kind: 'match', modules: ['xt_tcpudp'], config: 'CONFIG_NETFILTER_XTABLES' },
};

/** Verdicts built into x_tables itself. */
const STANDARD_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE']);

function piece(kind: 'match' | 'target', name: string): NetfilterPiece {
  const known = KNOWN[`${kind}:${name}`];
  if (known) return { name, ...known };
  const config = `CONFIG_NETFILTER_XT_${kind === 'match' ? 'MATCH' : 'TARGET'}_${name.toUpperCase()}`;
  return { kind, name, modules: [`xt_${name}`], config };
}

/** iptables-legacy uses one iptable_<table> module per table; iptables-nft uses nf_tables chains. */
function tablePiece(table: string, backend: string | null): NetfilterPiece {
  if (backend === 'nf_tables') {
    return table === 'nat'
      ? { kind: 'table', name: 'nat', modules: ['nft_chain_nat'], config: 'CONFIG_NFT_NAT' }
      : { kind: 'table', name: table, modules: ['nf_tables'], config: 'CONFIG_NF_TABLES' };
  }
  return { kind: 'table', name: table, modules: [`iptable_${table}`], config: `CONFIG_IP_NF_${table.toUpperCase()}` };
}

/** Every match, target and table the rendered chains use, each once, in first-use order. */
export function piecesUsedBy(desired: readonly Resource[], backend: string | null): NetfilterPiece[] {
  const pieces = new Map<string, NetfilterPiece>();
  const add = (p: NetfilterPiece) => {
    if (!pieces.has(`${p.kind}:${p.name}`)) pieces.set(`${p.kind}:${p.name}`, p);
  };
  const chains = desired.filter((r): r is ChainResource => r.kind === 'chain');
  for (const table of new Set(chains.map((c) => c.table))) add(tablePiece(table, backend));
  for (const rule of chains.flatMap((c) => c.rules)) {
    for (const m of rule.matchAll(/(?:^|\s)-m (\S+)/g)) add(piece('match', m[1]!));
    const target = /(?:^|\s)-j (\S+)/.exec(rule)?.[1];
    if (target && !STANDARD_TARGETS.has(target) && !target.startsWith('LBPROV_')) add(piece('target', target));
  }
  return [...pieces.values()];
}

/** The xtables-addons condition match, whether the rules use it or not. */
export function conditionPiece(): NetfilterPiece {
  return piece('match', 'condition');
}

/** Where `p` is on this kernel. Loaded and built in say more than registered, so they are asked first. */
export function pieceState(p: NetfilterPiece, modules: ModuleFacts): PieceState {
  const loaded = p.modules.find((m) => modules.loaded?.includes(m));
  if (loaded) return { state: 'loaded', module: loaded, detail: `module ${loaded} is loaded` };
  const builtin = p.modules.find((m) => modules.builtin?.includes(m));
  if (builtin) return { state: 'builtin', module: builtin, detail: `${builtin} is built into the kernel (modules.builtin)` };
  const registered = p.kind === 'match' ? modules.registeredMatches : p.kind === 'target' ? modules.registeredTargets : [];
  if (registered.includes(p.name)) {
    return { state: 'registered', detail: `registered in /proc/net/ip_tables_${p.kind === 'match' ? 'matches' : 'targets'}` };
  }
  const available = p.modules.find((m) => modules.available?.includes(m));
  if (available) return { state: 'loadable', module: available, detail: `module ${available} is installed but not loaded` };
  const noModuleSupport = modules.loaded === null && modules.builtin === null && modules.available === null;
  if (noModuleSupport) {
    // Without module support everything the kernel has is built in and registered at boot.
    // Tables register nothing there, and the facts' iptables-save of the table already worked.
    if (p.kind === 'table') return { state: 'builtin', detail: 'built in (a kernel without loadable modules; iptables-save of the table works)' };
    return { state: 'missing', detail: 'not registered, and this kernel has no loadable modules' };
  }
  if (modules.available === null) {
    return { state: 'unknown', detail: `not loaded, and /lib/modules/<kernel> is absent, so whether ${p.modules.join(' or ')} could be loaded is unknown` };
  }
  return { state: 'missing', detail: `not loaded, not built in, no ${p.modules.join(' or ')} module under /lib/modules/<kernel>` };
}

function describe(p: NetfilterPiece): string {
  return p.kind === 'table' ? `${p.name} table (${p.modules.join('/')})` : `${p.name} ${p.kind}`;
}

function remedyFor(p: NetfilterPiece): string {
  const install = p.install ?? `a kernel with ${p.config} (module ${p.modules[0]}), e.g. the distribution's standard kernel`;
  return p.fallback ? `${install}; ${p.fallback}` : install;
}

export function checkPiece(p: NetfilterPiece, modules: ModuleFacts): CheckResult {
  const id = `netfilter:${p.kind}:${p.name}`;
  const s = pieceState(p, modules);
  switch (s.state) {
    case 'registered':
    case 'loaded':
    case 'builtin':
      return { id, status: 'ok', message: `${describe(p)}: ${s.detail}` };
    case 'loadable':
      return { id, status: 'fix', message: `${describe(p)}: ${s.detail}; the plan loads it (load ${s.module})` };
    case 'unknown':
      return { id, status: 'warn', message: `${describe(p)}: ${s.detail}`, remedy: `check that ${p.modules[0]} exists for this kernel (modinfo ${p.modules[0]})` };
    case 'missing':
      return { id, status: 'fail', message: `${describe(p)}: ${s.detail}`, remedy: remedyFor(p) };
  }
}

export interface ModulePlan {
  /** Installed but not loaded: the plan loads them. */
  load: string[];
  /** Every module (not built in) the rules use: loaded at boot from /etc/modules-load.d/lbprov.conf. */
  persist: string[];
}

export function modulePlan(desired: readonly Resource[], modules: ModuleFacts, backend: string | null): ModulePlan {
  const load = new Set<string>();
  const persist = new Set<string>();
  for (const p of piecesUsedBy(desired, backend)) {
    const s = pieceState(p, modules);
    if (s.state === 'loadable') load.add(s.module);
    if ((s.state === 'loadable' || s.state === 'loaded') && s.module) persist.add(s.module);
  }
  return { load: [...load].sort(), persist: [...persist].sort() };
}
