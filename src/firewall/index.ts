/** The firewall backends lbprov knows; today iptables, nftables is to come beside it. */
import type { ResourceKind } from '../model/resources.js';
import type { FirewallBackend } from './backend.js';
import { iptablesBackend } from './iptables.js';

export type { FirewallBackend } from './backend.js';

export const FIREWALL_BACKENDS: readonly FirewallBackend[] = [iptablesBackend];

/** The backend whose resources these are, if any. */
export function backendOfKind(kind: ResourceKind): FirewallBackend | undefined {
  return FIREWALL_BACKENDS.find((b) => b.kinds.includes(kind));
}

export function firewallBackend(name: string): FirewallBackend | undefined {
  return FIREWALL_BACKENDS.find((b) => b.name === name);
}
