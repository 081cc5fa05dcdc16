/** Validated inventory: everything here has passed src/inventory validation. */

export interface SshSettings {
  /** Where SSH connects: host name or IPv4 address. */
  host: string;
  port: number;
  user: string;
  identityFile?: string;
  knownHosts: string;
  /** Run privileged commands through `sudo -n`. */
  become: boolean;
  /** Connect through these jump hosts first (OpenSSH ProxyJump form: user@host:port). */
  proxyJump?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  keepaliveIntervalMs: number;
  /** Tries of a connection that fails transiently (no route yet, reset, refused, dropped before login), 1 = no retry. */
  connectionAttempts: number;
}

/** A quality threshold pair: out of the pool past `down`, back only below `up` (hysteresis). */
export interface QualityThresholds {
  down: number;
  up: number;
}

/** More than `changes` state changes within `withinS` hold the link down for `holdS`. */
export interface FlapDamping {
  changes: number;
  withinS: number;
  holdS: number;
}

export interface MonitorSettings {
  /** Seconds between probe rounds, 0.2 and up (two decimals at most: the monitor counts hundredths). */
  intervalS: number;
  /** An answer slower than this is a loss. */
  timeoutS: number;
  /** Probes of one round that must answer for the round to count as a success. */
  reliability: number;
  /** Consecutive failed rounds before a link is declared down. */
  down: number;
  /** Consecutive good rounds before a link is declared up again. */
  up: number;
  /** Average RTT over the window, in ms: degraded above `down`, up again below `up`. */
  latencyMs: QualityThresholds | null;
  /** Lost probes over the window, in percent. */
  lossPct: QualityThresholds | null;
  /** Rounds the latency and loss are computed over. */
  window: number;
  flap: FlapDamping | null;
}

/**
 * Where a link's traffic goes next: a next hop the inventory names, one the gateway's DHCP
 * client learns (and re-learns on every renewal), or none on a point-to-point interface.
 */
export type NextHopSpec = { kind: 'static'; address: string } | { kind: 'dhcp' } | { kind: 'none' };
export type NextHopKind = NextHopSpec['kind'];

export interface LinkSpec {
  name: string;
  interface: string;
  nextHop: NextHopSpec;
  weight: number;
  /** 1-5: only the live links of the lowest tier that has any are balanced (higher tiers are backups). */
  tier: number;
  /**
   * Health-check targets. Empty only for a DHCP link without `probes:`: the monitor then
   * probes the router it learned.
   */
  probes: string[];
  monitor: MonitorSettings;
}

/** The inventory's `gateway:` word for a next hop. */
export function nextHopWord(hop: NextHopSpec): string {
  return hop.kind === 'static' ? hop.address : hop.kind;
}

export type FailoverMode = 'auto' | 'condition' | 'chain-swap';

export interface PortRange {
  from: number;
  to: number;
}

export type RuleVia = { kind: 'links'; links: string[] } | { kind: 'main' };

/**
 * A policy rule: new LAN connections it matches (every field given must match; an absent one
 * matches all) take its links instead of the pool, or the main table (`via: main`, not balanced).
 * Rules are tried in order; the first match wins.
 */
export interface PolicyRule {
  name: string;
  /** Canonical prefixes, "192.0.2.128/25" ("/32" for one host). */
  src: string[];
  dst: string[];
  proto: 'tcp' | 'udp' | 'icmp' | null;
  sport: PortRange[];
  dport: PortRange[];
  /** LAN interfaces it applies to; empty: all of them. */
  lan: string[];
  via: RuleVia;
  /** With `via` links and none of them live: balance over the pool, or drop the connection. */
  fallback: 'balance' | 'drop';
  /** "file:line" of the rule, for messages. */
  source: string;
}

export interface HookSpec {
  /** Its file name: installed as /etc/lbprov/hooks/<name>. */
  name: string;
  /** Where it was read from. */
  localPath: string;
  content: string;
}

/** A LAN source keeps the link of its first balanced connection while it opens one at least every timeoutS. */
export interface StickySettings {
  timeoutS: number;
}

/** The packet-filter backends lbprov can drive; `auto` lets the gateway decide (see firewall/). */
export const FIREWALL_BACKENDS = ['iptables', 'nftables'] as const;
export type FirewallBackendName = (typeof FIREWALL_BACKENDS)[number];
export type FirewallSetting = 'auto' | FirewallBackendName;

export interface GatewaySpec {
  name: string;
  ssh: SshSettings;
  /**
   * The SshSettings keys the inventory set; ~/.ssh/config supplies the others (resolveSshSettings).
   * Absent: treat every key as set.
   */
  sshExplicit?: (keyof SshSettings)[];
  lanInterfaces: string[];
  links: LinkSpec[];
  /** Bits of the packet/conntrack mark lbprov owns. */
  markMask: number;
  /** First routing table id; link i uses tableBase + 1 + i. */
  tableBase: number;
  /** First `ip rule` priority; lbprov owns [priorityBase, priorityBase + 99]. */
  priorityBase: number;
  failover: FailoverMode;
  firewall: FirewallSetting;
  sticky: StickySettings | null;
  rules: PolicyRule[];
  /** Executables the monitor runs on every link state change, read from this machine at load. */
  hooks: HookSpec[];
  /** Seconds a hook may run before it is killed. */
  hookTimeoutS: number;
  /** Where the monitor writes its Prometheus text file (node_exporter's textfile collector), or null. */
  metricsDir: string | null;
  /** What the inventory asks that works but is probably not meant (a rule another one shadows), "file:line: ...". */
  warnings: string[];
  /** Where each key of this gateway was written, for error messages: "file:line". */
  source: string;
}

export interface Inventory {
  /** Absolute path of the inventory file. */
  path: string;
  gateways: GatewaySpec[];
  groups: Record<string, string[]>;
}
