/** Current state of one gateway, parsed from the single facts round trip. Plain data. */
import type { Resource } from './resources.js';

export interface InterfaceFacts {
  name: string;
  up: boolean;
  /** IPv4 addresses with prefix length, "198.51.100.2/24". */
  ipv4: string[];
}

export interface ModuleFacts {
  /** Names in /proc/modules; null when the file does not exist. */
  loaded: string[] | null;
  /** Names from modules.builtin; null when it does not exist. */
  builtin: string[] | null;
  /** Module names found under /lib/modules/$(uname -r); null when absent. */
  available: string[] | null;
  /** /proc/net/ip_tables_matches and _targets. */
  registeredMatches: string[];
  registeredTargets: string[];
}

export interface ToolFacts {
  iptablesVersion: string | null;
  /** "nf_tables" | "legacy" | null when iptables is missing. */
  iptablesBackend: string | null;
  /** Rule lines found in the other backend's tables (a warning: the backends do not see each other). */
  otherBackendRules: number;
  /** iptables-restore is installed and knows --noflush (every change lbprov makes to iptables goes through it). */
  iptablesRestoreNoflush: boolean;
  iproute2Json: boolean;
  ping: boolean;
  conntrack: boolean;
  initSystem: 'systemd' | 'other';
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
  /** Resources lbprov owns as they are now on the gateway (chains, jumps, rules, tables, sysctls, files, modules). */
  owned: Resource[];
  /** Every sysctl value read, by key (including ones lbprov does not manage yet). */
  sysctls: Record<string, string>;
  modules: ModuleFacts;
  tools: ToolFacts;
  monitor: MonitorFacts;
  /** Hash of the raw facts output, for saved-plan staleness checks. */
  fingerprint: string;
  /** Non-fatal oddities found while parsing (foreign rules in lbprov chains, stderr of commands). */
  warnings: string[];
}
