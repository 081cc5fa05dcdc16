/** What a lab is made of, saved as state.json: enough for another process to use it or remove it. */
import type { FirewallSetting } from '../model/inventory.js';
import { writeFileSync } from 'node:fs';

/** static: a fixed address on an Ethernet veth; dhcp: the same veth, addressed by dhclient; p2p: a relayed TUN ppp<k>. */
export type LinkKind = 'static' | 'dhcp' | 'p2p';

/** What the ISP hands one gateway on a dynamic link: a DHCP lease, or a p2p session's address pair. */
export interface LinkPool {
  gatewayAddress: string;
  /** The DHCP router, or the p2p session's peer. */
  nextHop: string;
  /** The lease's prefix; 32 for p2p sessions. */
  prefixLength: number;
}

/** A p2p link's relay carrier: a veth with one /31 (MTU 1520, so the relayed 1492-byte packets never fragment). */
export interface Carrier {
  interface: string;
  address: string;
  ispInterface: string;
  ispAddress: string;
}

export interface LabLink {
  /** Inventory name: isp1, isp2, ... */
  name: string;
  /** Interface in the gateway namespace: wan1, wan2, ... */
  interface: string;
  weight: number;
  /** Network namespace of this link's ISP router (shared by every gateway of the lab). */
  ispNs: string;
  /** The ISP router's interface facing this gateway (for p2p, its end of the session: a TUN device). */
  ispInterface: string;
  /** The ISP router's address on the gateway's segment: the inventory's `gateway` (dhcp: the current router; p2p: the peer). */
  nextHop: string;
  /**
   * The gateway's own address on this link: the source the server sees through this link. For dhcp
   * and p2p links the current lease's or session's (the last one's while there is none).
   */
  gatewayAddress: string;
  prefixLength: number;
  /** Answers only through this ISP, and only while its upstream is up for this gateway. */
  probe: string;
  kind: LinkKind;
  /** dhcp and p2p: what the ISP hands this gateway in turn (renumbering, new sessions); absent for static links. */
  pools?: LinkPool[];
  /** Index in `pools` of the current (or last) lease or session; absent on a p2p link before its first session. */
  pool?: number;
  /** p2p only. */
  carrier?: Carrier;
  /** p2p only: whether a session is up. */
  connected?: boolean;
}

/** What runs a gateway: its sshd alone in a private mount namespace, or a container booting systemd (systemd/). */
export type LabInit = 'none' | 'systemd';

/** A systemd gateway's container: everything the lab mounts and creates for it, so destroy can remove it after any failure. */
export interface GatewayContainer {
  /** nspawn's machine name (the container's hostname). */
  machine: string;
  /** The cached Debian tree (read-only lower layer, shared by every container). */
  lower: string;
  /** The overlay mount the container boots from. */
  root: string;
  /** The gateway's own writes: what survives its reboots. */
  upper: string;
  work: string;
  /** The container's cgroup in each hierarchy nspawn uses; nspawn is started from them. */
  cgroups: string[];
  /** nspawn's and the booting system's console output. */
  consoleLog: string;
}

export interface LabGateway {
  name: string;
  ns: string;
  /** Where SSH connects (gateway end of the management /31). */
  mgmtAddress: string;
  /** Controller's end of the management /31, in the root namespace. */
  rootAddress: string;
  /** Root-namespace end of the management veth. */
  rootLink: string;
  lanInterface: string;
  lanAddress: string;
  /** Namespace of this gateway's LAN client, when it has one. */
  lanClientNs?: string;
  lanClientAddress: string;
  /**
   * Addresses the LAN client has (whether or not this gateway has one): lanClientAddress first,
   * then the hosts of `secondLan` after lan0's.
   */
  lanSources: string[];
  /** With more than one LAN source: the second LAN subnet on lan0 (lanAddress is lan0's address in it). */
  secondLan?: { cidr: string; prefixLength: number; lanAddress: string };
  /** This gateway's private files (overlay upper dirs, sshd config, keys, logs). */
  dir: string;
  /** The lab's host key for this gateway (a systemd gateway gets a copy in its container). */
  hostKeyFile: string;
  /** init none only: a systemd gateway's sshd config and pid file are the container's own. */
  sshdConfig: string;
  sshdPidFile: string;
  links: LabLink[];
  /** systemd gateways only. */
  container?: GatewayContainer;
}

export interface StartedProcess {
  pid: number;
  /** /proc/PID/stat start time, so a reused pid is never taken for ours. */
  startTime: string;
  role: string;
}

export interface LabState {
  version: 1;
  prefix: string;
  dir: string;
  stateFile: string;
  inventoryPath: string;
  createdAt: string;
  /** Every namespace of the lab (gateways, LAN clients, ISPs, server, parking). */
  namespaces: string[];
  /** Interfaces of the lab in the root namespace. */
  rootLinks: string[];
  /** Allocator lock directories held by the lab. */
  locks: string[];
  /** The lab's claim on a raised neighbour table (neighbours.ts), when it needed one. */
  neighbourClaim?: string;
  processes: StartedProcess[];
  ssh: { user: string; port: number; identityFile: string; knownHosts: string };
  server: {
    ns: string;
    /** serviceAddresses[0]. */
    address: string;
    /** On the server's loopback, reached through every ISP; the server answers on each of them. */
    serviceAddresses: string[];
    /** tcpPorts[0]. */
    port: number;
    /** New TCP connection -> the peer address, then close; counted by the peer address. */
    tcpPorts: number[];
    /** Each UDP datagram -> one datagram with the peer address; counted by the peer address. */
    udpPorts: number[];
    /** Long-lived connections: the peer address, then an echo. */
    echoPort: number;
    /** Unix socket (reachable from the root namespace) answering "counts" / "reset". */
    controlSocket: string;
  };
  isps: {
    name: string;
    ns: string;
    upstreamInterface: string;
    /** The block every gateway's address on this ISP comes from, e.g. 203.0.113.0/29. */
    customerBlock: string;
    /** dhcp and p2p ISPs: the block of their second pool (routed back to them like the customer block). */
    alternateBlock?: string;
  }[];
  /** Holds the LAN peers of gateways without a LAN client, so every lan0 has carrier. */
  parkingNs?: string;
  /** Whether each gateway masquerades on wan1 as a single-ISP router does before lbprov. */
  baselineNat: boolean;
  /** The inventory's `defaults.firewall`, when the lab was asked for one (else the inventory leaves it to auto). */
  firewall?: FirewallSetting;
  gateways: LabGateway[];
  /** Absent: 'none' (labs made before systemd gateways have no such field). */
  init?: LabInit;
}

export function writeState(state: LabState): void {
  writeFileSync(state.stateFile, `${JSON.stringify(state, null, 2)}\n`);
}
