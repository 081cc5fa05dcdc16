/**
 * The failover half of the view: which mechanism a gateway uses and why, the
 * balancing chain for the current health, every pre-rendered variant the
 * monitor may swap in, and the monitor's per-link settings.
 */
import type { GatewaySpec } from '../model/inventory.js';
import type { HostFacts } from '../model/facts.js';
import { hex, linkMark, linkTable, ownTrafficTable, rulePriorities } from '../model/ownership.js';
import { RemoteError } from '../errors.js';
import type { FirewallBackend } from '../firewall/index.js';
import type { PoolView } from './pool.js';
import { linksOf, mainChain, ruleChains, type ChainPoolView, type RuleChainView } from './policy-view.js';

export type FailoverMechanism = 'chain-swap' | 'condition';

/** One pool of balancing rules; `conditions` ('' or '-m condition ... ' with a trailing space) gates it. */
export interface BalancePoolView {
  conditions: string;
  pool: PoolView;
}

/** The balancing for one set of live links: the main pool and each rule's. */
export interface BalanceView {
  markMask: string;
  /** The condition mechanism's pools, one per set of live links, each gated on the variables; else empty. */
  pools: BalancePoolView[];
  /** Chain swap: the main pool for the live links; null with the condition mechanism. */
  main: ChainPoolView | null;
  rules: RuleChainView[];
}

/** The chain for one set of healthy links; `mask` has bit i set when link i (0-based) is healthy. */
export interface BalanceVariantView {
  mask: string;
  links: string;
  balance: BalanceView;
}

/**
 * A link as the monitor knows it. Nothing here depends on the link's address or learned next
 * hop: the monitor reads those on the gateway, so a renewed lease changes no file of lbprov's.
 */
export interface MonitorLinkView {
  index: string;
  name: string;
  interface: string;
  /** static | dhcp | none. */
  kind: string;
  /** The inventory's next hop of a static link, else ''. */
  staticNextHop: string;
  table: string;
  sourcePriority: string;
  mark: string;
  weight: string;
  /** Probe targets, space-separated (a shell word list in monitor.conf); '' probes the learned router. */
  probes: string;
  interval: string;
  /** The interval in hundredths of a second: the monitor's clock is /proc/uptime's. */
  intervalCs: string;
  timeout: string;
  timeoutMs: string;
  reliability: string;
  down: string;
  up: string;
  /** The xt_condition variable the monitor writes: /proc/net/nf_condition/<condition>. */
  condition: string;
  /** 1-5: the pool takes the lowest tier with a live link (the gateway's own traffic too). */
  tier: string;
  /** Quality over the last `window` rounds: average RTT in ms and lost probes in percent; '' off. */
  latencyDownMs: string;
  latencyUpMs: string;
  lossDownPct: string;
  lossUpPct: string;
  window: string;
  /** Flap damping: more than `flapChanges` changes in `flapWithinS` hold the link down `flapHoldS`; '0' off. */
  flapChanges: string;
  flapWithinS: string;
  flapHoldS: string;
  /** Shell that forgets the sources sticking to the link when it leaves the pool ('' without sticky). */
  stickyFlush: string;
}

export interface FailoverView {
  mechanism: FailoverMechanism;
  /** Which mechanism and why, for the plan's notes. */
  note: string;
  condition: boolean;
  /** Sources stick to their link (gw.sticky): pools go through pick chains that record them. */
  sticky: boolean;
  /** 'systemd' when the gateway runs systemd: the monitor then runs under its unit. */
  init: 'systemd' | 'other';
  markMask: string;
  linkCount: string;
  /** The table of the gateway's own traffic (view-model ownTraffic), kept by the monitor too. */
  ownTrafficTable: string;
  /** The hooks' file names in /etc/lbprov/hooks, space-separated (a shell word list in monitor.conf). */
  hooks: string;
  hookTimeoutS: string;
  /** Seconds between the monitor's housekeeping ticks (monitorTickS). */
  tickS: string;
  /** Where the Prometheus text file goes ('' none). */
  metricsDir: string;
  links: MonitorLinkView[];
  /** LBPROV_BALANCE as it should be now. */
  balance: BalanceView;
  /** Chain-swap only: one chain per non-empty set of healthy links (empty for condition). */
  variants: BalanceVariantView[];
}

/**
 * The monitor's housekeeping tick (a stalled prober, flap holds, the state file's refresh): probe
 * answers and kernel events arrive as events, so the tick needs only half the shortest interval,
 * 1 s at least and 5 s at most. Each tick starts a `sleep`: on a machine that hosts a thousand lab
 * gateways, a 1 s tick for 30 s probes was a whole core.
 */
export function monitorTickS(gw: Pick<GatewaySpec, 'links'>): number {
  const shortest = Math.min(...gw.links.map((l) => l.monitor.intervalS));
  return Math.min(5, Math.max(1, Math.floor(shortest / 2)));
}

export function conditionVariable(linkName: string): string {
  return `lbprov_${linkName}`;
}

/**
 * auto: `condition` when the match is there, else chain swap. Forcing `condition`
 * where the match is absent is an error: the balancing rules would not load.
 * Without facts (the pre-render that decides what to read) the setting alone decides.
 */
export function chooseMechanism(gw: GatewaySpec, backend: FirewallBackend, facts: HostFacts | null): { mechanism: FailoverMechanism; note: string } {
  if (gw.failover === 'chain-swap') {
    return { mechanism: 'chain-swap', note: 'failover: chain-swap (set in the inventory); the monitor swaps in pre-rendered balancing chains' };
  }
  if (gw.rules.length > 0 || gw.sticky) {
    return { mechanism: 'chain-swap', note: 'failover: chain-swap (auto: rules and sticky sources need their own chains per set of live links); the monitor swaps in pre-rendered balancing chains' };
  }
  if (!facts) return { mechanism: gw.failover === 'condition' ? 'condition' : 'chain-swap', note: 'failover: decided from the facts' };
  const source = backend.conditionMatch?.(facts.modules, facts.firewall) ?? null;
  if (gw.failover === 'condition') {
    if (!source) {
      const why = backend.conditionMatch
        ? 'the xtables-addons condition match is not available on this gateway (not in /proc/net/ip_tables_matches, not loaded, not built in, no xt_condition module); install xtables-addons or use failover: auto'
        : `the ${backend.name} backend has no condition match (it is an iptables match from xtables-addons); use failover: auto or chain-swap`;
      throw new RemoteError(`failover: condition is set (${gw.source}) but ${why}`, { host: gw.name, resource: 'failover' }, 'prerequisite');
    }
    return { mechanism: 'condition', note: `failover: condition (set in the inventory; ${source}); the monitor writes /proc/net/nf_condition/lbprov_<link>` };
  }
  if (source) return { mechanism: 'condition', note: `failover: condition (auto: ${source}); the monitor writes /proc/net/nf_condition/lbprov_<link>` };
  const absent = backend.conditionMatch ? 'the xtables-addons condition match is absent on this kernel' : `${backend.name} has no condition match`;
  return { mechanism: 'chain-swap', note: `failover: chain-swap (auto: ${absent}); the monitor swaps in pre-rendered balancing chains` };
}

/**
 * Condition mechanism: one pool per set of healthy links, each rule gated on
 * every link's variable. `statistic` comes before `condition`, so every rule's
 * nth counter advances on every NEW packet and exactly one pool marks it.
 */
function conditionBalance(gw: GatewaySpec, markMask: string): BalanceView {
  const pools: BalancePoolView[] = [];
  for (let mask = 2 ** gw.links.length - 1; mask >= 1; mask--) {
    const conditions = gw.links
      .map((l, i) => `-m condition ${(mask >> i) & 1 ? '' : '! '}--condition ${conditionVariable(l.name)} `)
      .join('');
    pools.push({ conditions, pool: mainChain(gw, mask).pool! });
  }
  return { markMask, pools, main: null, rules: [] };
}

function plainBalance(gw: GatewaySpec, markMask: string, mask: number): BalanceView {
  return { markMask, pools: [], main: mainChain(gw, mask), rules: ruleChains(gw, mask) };
}

/** `healthy`: the links balancing now (render/links.ts healthyLinks). */
export function buildFailoverView(gw: GatewaySpec, backend: FirewallBackend, facts: HostFacts | null, healthy: ReadonlySet<string>): { failover: FailoverView } {
  const { mechanism, note } = chooseMechanism(gw, backend, facts);
  const markMask = hex(gw.markMask);
  const healthyMask = gw.links.reduce((m, l, i) => (healthy.has(l.name) ? m | (1 << i) : m), 0);
  const variants: BalanceVariantView[] = [];
  if (mechanism === 'chain-swap') {
    for (let mask = 1; mask < 2 ** gw.links.length; mask++) {
      variants.push({ mask: String(mask), links: linksOf(gw, mask).map((l) => l.name).join(','), balance: plainBalance(gw, markMask, mask) });
    }
  }
  return {
    failover: {
      mechanism,
      note,
      condition: mechanism === 'condition',
      sticky: gw.sticky !== null,
      init: facts?.tools.initSystem ?? 'other',
      markMask,
      linkCount: String(gw.links.length),
      ownTrafficTable: String(ownTrafficTable(gw)),
      hooks: gw.hooks.map((h) => h.name).join(' '),
      hookTimeoutS: String(gw.hookTimeoutS),
      tickS: String(monitorTickS(gw)),
      metricsDir: gw.metricsDir ?? '',
      links: gw.links.map((l, i) => ({
        index: String(i + 1),
        name: l.name,
        interface: l.interface,
        kind: l.nextHop.kind,
        staticNextHop: l.nextHop.kind === 'static' ? l.nextHop.address : '',
        table: String(linkTable(gw, i)),
        sourcePriority: String(rulePriorities(gw, i).source),
        mark: hex(linkMark(gw.markMask, i)),
        weight: String(l.weight),
        probes: l.probes.join(' '),
        interval: String(l.monitor.intervalS),
        intervalCs: String(Math.round(l.monitor.intervalS * 100)),
        timeout: String(l.monitor.timeoutS),
        timeoutMs: String(Math.round(l.monitor.timeoutS * 1000)),
        reliability: String(l.monitor.reliability),
        down: String(l.monitor.down),
        up: String(l.monitor.up),
        condition: conditionVariable(l.name),
        tier: String(l.tier),
        latencyDownMs: l.monitor.latencyMs ? String(l.monitor.latencyMs.down) : '',
        latencyUpMs: l.monitor.latencyMs ? String(l.monitor.latencyMs.up) : '',
        lossDownPct: l.monitor.lossPct ? String(l.monitor.lossPct.down) : '',
        lossUpPct: l.monitor.lossPct ? String(l.monitor.lossPct.up) : '',
        window: String(l.monitor.window),
        flapChanges: String(l.monitor.flap?.changes ?? 0),
        flapWithinS: String(l.monitor.flap?.withinS ?? 0),
        flapHoldS: String(l.monitor.flap?.holdS ?? 0),
        stickyFlush: gw.sticky ? backend.stickyFlush({ name: l.name, index: i + 1 }, gw.sticky) : '',
      })),
      balance: mechanism === 'condition' ? conditionBalance(gw, markMask) : plainBalance(gw, markMask, healthyMask),
      variants,
    },
  };
}
