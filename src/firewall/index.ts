/** The firewall backends lbprov knows, and how a gateway gets one. */
import type { FirewallBackendName } from '../model/inventory.js';
import type { ResourceKind } from '../model/resources.js';
import type { FirewallBackend } from './backend.js';
import { iptablesBackend } from './iptables/index.js';
import { nftablesBackend } from './nftables/index.js';

export type { FirewallBackend, BackendFacts, BootPayload, FirewallTemplate } from './backend.js';

/** In the order `auto` tries them on a gateway without lbprov; the last one is the fallback. */
export const FIREWALL_BACKENDS: readonly FirewallBackend[] = [nftablesBackend, iptablesBackend];

export function firewallBackend(name: FirewallBackendName): FirewallBackend {
  const backend = FIREWALL_BACKENDS.find((b) => b.name === name);
  if (!backend) throw new Error(`no firewall backend ${name}`);
  return backend;
}

/** The backend whose resources these are, if any. */
export function backendOfKind(kind: ResourceKind): FirewallBackend | undefined {
  return FIREWALL_BACKENDS.find((b) => b.kinds.includes(kind));
}
