/** Every name, address and path of a lab, decided before anything is created. */
import type { FirewallSetting } from '../model/inventory.js';
import { join } from 'node:path';
import {
  customerAddress,
  LAN_CLIENT_ADDRESS,
  LAN_GATEWAY_ADDRESS,
  managementPair,
  planAddresses,
  SERVICE_ADDRESSES,
  upstream,
} from './addressing.js';
import { LabError } from './errors.js';
import type { GatewayContainer, LabGateway, LabInit, LabLink, LabState, LinkKind } from './state.js';

export const PREFIX_PATTERN = /^[a-z][a-z0-9]{1,8}$/;
const IFNAMSIZ = 15;

/** Which gateways get a LAN client namespace: all, none, or these indexes (from 0). */
export type LanClientChoice = 'all' | 'none' | readonly number[];

export interface LayoutInput {
  prefix: string;
  dir: string;
  inventoryPath: string;
  /** Management slot of each gateway, in order. */
  slots: readonly number[];
  weights: readonly number[];
  lanClients: LanClientChoice;
  baselineNat: boolean;
  firewall?: FirewallSetting;
  /** One per link (default: all static). */
  linkKinds?: readonly LinkKind[];
  /** Source addresses of each LAN client (default 1). */
  lanSources?: number;
  /** Default 'none'. */
  init?: LabInit;
  /** systemd: the cached tree every container boots from, and the cgroup hierarchies nspawn uses (their mount points). */
  containerTree?: string;
  cgroupHierarchies?: readonly string[];
}

/** The lab's parent cgroup in each hierarchy; each container gets `<prefix>-<gateway>` below it. */
export const LAB_CGROUP = 'lbprov-lab';

function describeContainer(input: LayoutInput, name: string, gatewayDir: string): GatewayContainer {
  const { containerTree, cgroupHierarchies } = input;
  if (containerTree === undefined || cgroupHierarchies === undefined) throw new LabError('systemd gateways need a tree and cgroup hierarchies');
  const machine = `${input.prefix}-${name}`;
  return {
    machine,
    lower: containerTree,
    root: join(gatewayDir, 'root'),
    upper: join(gatewayDir, 'upper'),
    work: join(gatewayDir, 'work'),
    cgroups: cgroupHierarchies.map((hierarchy) => join(hierarchy, LAB_CGROUP, machine)),
    consoleLog: join(gatewayDir, 'console.log'),
  };
}

export const SERVICE_PORT = 80;
/** Ports the server answers on: the HTTP ports for TCP, SIP and an RTP-like port for UDP (services rules tend to name). */
export const TCP_PORTS: readonly number[] = [SERVICE_PORT, 8080];
export const UDP_PORTS: readonly number[] = [5060, 10000];
/** The classic echo port: long-lived connections. */
export const ECHO_PORT = 7;

/** 3:1 for the seed's two links; otherwise K, K-1, ..., 1. */
export function defaultWeights(links: number): number[] {
  return links === 2 ? [3, 1] : Array.from({ length: links }, (_, index) => links - index);
}

export function describeLab(input: LayoutInput): LabState {
  const { prefix, dir, slots, weights } = input;
  if (!PREFIX_PATTERN.test(prefix)) throw new LabError(`lab prefix must match ${PREFIX_PATTERN}, got "${prefix}"`);
  if (weights.some((weight) => !Number.isInteger(weight) || weight < 1)) {
    throw new LabError(`weights must be positive integers, got [${weights.join(', ')}]`);
  }
  const kinds = input.linkKinds ?? weights.map((): LinkKind => 'static');
  const lanSourceCount = input.lanSources ?? 1;
  const plan = planAddresses(slots.length, weights.length, kinds, lanSourceCount);
  const { secondLan } = plan;
  const lanSources = [
    LAN_CLIENT_ADDRESS,
    ...(secondLan !== undefined ? Array.from({ length: lanSourceCount - 1 }, (_, index) => customerAddress(secondLan, index + 1)) : []),
  ];
  const hasClient = (index: number): boolean =>
    input.lanClients === 'all' || (input.lanClients !== 'none' && input.lanClients.includes(index));
  const ns = (suffix: string): string => `${prefix}-${suffix}`;

  const isps = plan.customerBlocks.map((block, index) => ({
    name: `isp${index + 1}`,
    ns: ns(`isp${index + 1}`),
    upstreamInterface: 'up0',
    customerBlock: block.cidr,
    ...(plan.alternateBlocks[index] !== undefined ? { alternateBlock: plan.alternateBlocks[index].cidr } : {}),
  }));

  const gateways: LabGateway[] = slots.map((slot, index) => {
    const name = `gw${index + 1}`;
    const pair = managementPair(slot);
    const gatewayDir = join(dir, name);
    const rootLink = `${prefix}m${index + 1}`;
    if (rootLink.length > IFNAMSIZ) throw new LabError(`interface name ${rootLink} is longer than ${IFNAMSIZ} characters`);
    return {
      name,
      ns: ns(name),
      mgmtAddress: pair.gateway,
      rootAddress: pair.root,
      rootLink,
      lanInterface: 'lan0',
      lanAddress: LAN_GATEWAY_ADDRESS,
      ...(hasClient(index) ? { lanClientNs: ns(`${name}-lan`) } : {}),
      lanClientAddress: LAN_CLIENT_ADDRESS,
      lanSources: [...lanSources],
      ...(secondLan !== undefined
        ? { secondLan: { cidr: secondLan.cidr, prefixLength: secondLan.prefixLength, lanAddress: secondLan.nextHop } }
        : {}),
      dir: gatewayDir,
      hostKeyFile: join(gatewayDir, 'ssh_host_ed25519_key'),
      sshdConfig: join(gatewayDir, 'sshd_config'),
      sshdPidFile: join(gatewayDir, 'sshd.pid'),
      links: plan.customerBlocks.map((block, linkIndex) => {
        const isp = isps[linkIndex] as (typeof isps)[number];
        const kind = kinds[linkIndex] as LinkKind;
        const gatewayAddress = customerAddress(block, index + 1);
        const link: LabLink = {
          name: isp.name,
          interface: kind === 'p2p' ? `ppp${linkIndex + 1}` : `wan${linkIndex + 1}`,
          weight: weights[linkIndex] as number,
          ispNs: isp.ns,
          ispInterface: kind === 'p2p' ? `${name}-ppp` : name,
          nextHop: block.nextHop,
          gatewayAddress,
          prefixLength: kind === 'p2p' ? 32 : block.prefixLength,
          probe: upstream(linkIndex + 1).server,
          kind,
        };
        const alternate = plan.alternateBlocks[linkIndex];
        if (alternate !== undefined) {
          link.pools = [block, alternate].map((pool) => ({
            gatewayAddress: customerAddress(pool, index + 1),
            nextHop: pool.nextHop,
            prefixLength: kind === 'p2p' ? 32 : pool.prefixLength,
          }));
          // A dhcp link's first lease comes from pool 0; a p2p link has had no session yet.
          if (kind === 'dhcp') link.pool = 0;
        }
        const carrier = plan.carriers[linkIndex]?.[index];
        if (carrier !== undefined) {
          link.carrier = { interface: `carrier${linkIndex + 1}`, address: carrier.gateway, ispInterface: `${name}-carrier`, ispAddress: carrier.isp };
          link.connected = false;
        }
        return link;
      }),
      ...(input.init === 'systemd' ? { container: describeContainer(input, name, gatewayDir) } : {}),
    };
  });

  const parkingNs = gateways.some((gateway) => gateway.lanClientNs === undefined) ? ns('park') : undefined;
  const server = ns('srv');
  return {
    version: 1,
    prefix,
    dir,
    stateFile: join(dir, 'state.json'),
    inventoryPath: input.inventoryPath,
    createdAt: new Date().toISOString(),
    namespaces: [
      server,
      ...isps.map((isp) => isp.ns),
      ...(parkingNs !== undefined ? [parkingNs] : []),
      ...gateways.flatMap((gateway) => [gateway.ns, ...(gateway.lanClientNs !== undefined ? [gateway.lanClientNs] : [])]),
    ],
    rootLinks: gateways.map((gateway) => gateway.rootLink),
    locks: [],
    processes: [],
    ssh: { user: 'root', port: 22, identityFile: join(dir, 'id_ed25519'), knownHosts: join(dir, 'known_hosts') },
    server: {
      ns: server,
      address: SERVICE_ADDRESSES[0] as string,
      serviceAddresses: [...SERVICE_ADDRESSES],
      port: SERVICE_PORT,
      tcpPorts: [...TCP_PORTS],
      udpPorts: [...UDP_PORTS],
      echoPort: ECHO_PORT,
      controlSocket: join(dir, 'server.sock'),
    },
    isps,
    ...(parkingNs !== undefined ? { parkingNs } : {}),
    baselineNat: input.baselineNat,
    ...(input.firewall ? { firewall: input.firewall } : {}),
    gateways,
    ...(input.init === 'systemd' ? { init: input.init } : {}),
  };
}
