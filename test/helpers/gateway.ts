/** Validated gateway specs and facts for pure tests, shaped like the lab's. */
import type { GatewaySpec } from '../../src/model/inventory.js';
import type { HostFacts } from '../../src/model/facts.js';

const monitor = { intervalS: 2, timeoutS: 1, reliability: 1, down: 3, up: 3, latencyMs: null, lossPct: null, window: 10, flap: null } as const;

export function gatewaySpec(weights: number[] = [3, 1]): GatewaySpec {
  return {
    name: 'gw-a1',
    ssh: { host: '192.0.2.1', port: 22, user: 'root', knownHosts: '/dev/null', become: false, connectTimeoutMs: 1000, commandTimeoutMs: 1000, keepaliveIntervalMs: 1000, connectionAttempts: 1 },
    lanInterfaces: ['lan0'],
    links: weights.map((weight, i) => ({
      name: `isp${i + 1}`,
      interface: `wan${i + 1}`,
      nextHop: { kind: 'static' as const, address: `203.0.113.${8 * i + 1}` },
      weight,
      tier: 1,
      probes: [`198.51.100.${8 * i + 1}`],
      monitor: { ...monitor },
    })),
    markMask: 0xf0000000,
    tableBase: 100,
    priorityBase: 100,
    failover: 'auto',
    firewall: 'auto',
    sticky: null,
    rules: [],
    hooks: [],
    hookTimeoutS: 10,
    metricsDir: null,
    warnings: [],
    source: 'test.yml:1',
  };
}

/** `backend`: the firewall backend the facts say the gateway uses. */
export function factsFor(gw: GatewaySpec, health: Record<string, string> = {}, backend: 'iptables' | 'nftables' = 'iptables'): HostFacts {
  return {
    kernel: '6.18.0',
    interfaces: [
      { name: 'lan0', up: true, ipv4: ['198.51.100.129/26'] },
      ...gw.links.map((l, i) => ({ name: l.interface, up: true, ipv4: [`203.0.113.${8 * i + 2}/29`] })),
    ],
    mainDefaultRoutes: [{ via: '203.0.113.1', dev: 'wan1', metric: 0 }],
    dhcpLeases: {},
    owned: [],
    sysctls: {},
    modules: { loaded: null, builtin: null, available: null },
    tools: { iproute2Json: true, ping: true, conntrack: true, initSystem: 'other' },
    firewall: {
      recorded: null,
      chosen: backend,
      reason: `firewall: ${backend} (auto: no lbprov on this gateway yet)`,
      iptables: { version: 'iptables v1.8.9 (nf_tables)', variant: 'nf_tables', otherVariantRules: 0, restore: true, recentListMax: 100, registeredMatches: [], registeredTargets: [] },
      nftables: { version: 'nftables v1.0.6 (Lester Gooch #5)', usable: true, expressions: 'ok', probeError: '' },
    },
    monitor: { pid: null, running: false, state: health },
    fingerprint: 'x',
    warnings: [],
  };
}

