/** Current state of one gateway, parsed from the single facts round trip. Plain data. */
import { createHash } from 'node:crypto';
import type { Resource } from './resources.js';
import type { FirewallBackendName, FirewallSetting } from './inventory.js';
import type { OwnedRanges } from './ownership.js';

/** What the facts script must read besides the fixed sections. */
export interface FactsRequest {
  sysctlKeys: string[];
  filePaths: string[];
  /** Services (daemons) lbprov runs: /run/lbprov/<name>.pid and .revision are read. */
  services: string[];
  ranges: OwnedRanges;
  /** The inventory's firewall setting: which backend's sections run (firewall/choice). */
  firewall: FirewallSetting;
  /** Backends the playbook has firewall entries for: the only ones `auto` may pick. */
  firewallCandidates: FirewallBackendName[];
  /**
   * Contents the controller already has for some of the files (the pre-render's, or what an apply
   * just wrote): a file whose hash matches one is reported by its hash instead of sent whole.
   */
  knownFiles?: KnownFile[];
}

export interface KnownFile {
  path: string;
  /** Hex SHA-256 of the content's UTF-8 bytes. */
  sha256: string;
  content: string;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function knownFile(path: string, content: string): KnownFile {
  return { path, sha256: createHash('sha256').update(content).digest('hex'), content };
}

export interface InterfaceFacts {
  name: string;
  up: boolean;
  /** IPv4 addresses with prefix length, "198.51.100.2/24". */
  ipv4: string[];
}

/** A default route of the main table: a DHCP client's, the admin's, a VPN's (lbprov only reads them). */
export interface MainDefaultRoute {
  via: string | null;
  dev: string | null;
  metric: number;
}

/** What lbprov's dhclient exit hook recorded for an interface (/run/lbprov/dhcp/<interface>). */
export interface DhcpLease {
  address: string;
  router: string;
}

export interface ModuleFacts {
  /** Names in /proc/modules; null when the file does not exist. */
  loaded: string[] | null;
  /** Names from modules.builtin; null when it does not exist. */
  builtin: string[] | null;
  /** Module names found under /lib/modules/$(uname -r); null when absent. */
  available: string[] | null;
}

export interface ToolFacts {
  iproute2Json: boolean;
  ping: boolean;
  conntrack: boolean;
  initSystem: 'systemd' | 'other';
}

export interface IptablesFacts {
  version: string | null;
  /** "nf_tables" | "legacy" | null when iptables is missing. */
  variant: 'nf_tables' | 'legacy' | null;
  /** Rule lines found in the other variant's tables (a warning: the two do not see each other). */
  otherVariantRules: number;
  /** iptables-restore is installed (every change lbprov makes to iptables goes through it with --noflush). */
  restore: boolean;
  /** Sources an xt_recent list holds (its ip_list_tot; null when the module is not in the kernel yet). */
  recentListMax: number | null;
  /** /proc/net/ip_tables_matches and _targets. */
  registeredMatches: string[];
  registeredTargets: string[];
}

export interface NftablesFacts {
  /** `nft -v`, or null when nft is not installed. */
  version: string | null;
  /** nft could talk to the kernel's nf_tables. */
  usable: boolean;
  /**
   * Whether the kernel has the expressions lbprov's table uses (numgen, ct, masquerade, nat and
   * route chains): in use (lbprov's table is loaded), ok or missing (a dry-run `nft -c` of a probe
   * table said so), unknown (nft could not be asked).
   */
  expressions: 'in-use' | 'ok' | 'missing' | 'unknown';
  /** What `nft -c` said when the probe failed. */
  probeError: string;
}

export interface FirewallFacts {
  /** The backend lbprov already uses on this gateway (its record), or null on a gateway without lbprov. */
  recorded: FirewallBackendName | null;
  /** The backend the plan uses, and why, in words for the plan's notes. */
  chosen: FirewallBackendName;
  reason: string;
  /** What each backend whose sections ran reported about its tools. */
  iptables?: IptablesFacts;
  nftables?: NftablesFacts;
}

export interface MonitorFacts {
  /** Pid from the monitor's pidfile and whether it is alive. */
  pid: number | null;
  running: boolean;
  /** Raw key=value state written by the monitor (per-link up/down, since, last probe). */
  state: Record<string, string>;
}

export interface HostFacts {
  kernel: string;
  interfaces: InterfaceFacts[];
  mainDefaultRoutes: MainDefaultRoute[];
  /** By interface name. */
  dhcpLeases: Record<string, DhcpLease>;
  /** Resources lbprov owns as they are now on the gateway (firewall objects, rules, tables, sysctls, files, modules). */
  owned: Resource[];
  /** Every sysctl value read, by key (including ones lbprov does not manage yet). */
  sysctls: Record<string, string>;
  modules: ModuleFacts;
  tools: ToolFacts;
  firewall: FirewallFacts;
  monitor: MonitorFacts;
  /** Hash of what a saved plan depends on, for staleness checks. */
  fingerprint: string;
  /** Non-fatal oddities found while parsing (foreign rules in lbprov chains, stderr of commands). */
  warnings: string[];
}
