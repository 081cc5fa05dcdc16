/** What a lab is made of, saved as state.json: enough for another process to use it or remove it. */
import type { FirewallSetting } from '../model/inventory.js';

export interface LabLink {
  /** Inventory name: isp1, isp2, ... */
  name: string;
  /** Interface in the gateway namespace: wan1, wan2, ... */
  interface: string;
  weight: number;
  /** Network namespace of this link's ISP router (shared by every gateway of the lab). */
  ispNs: string;
  /** The ISP router's interface facing this gateway. */
  ispInterface: string;
  /** The ISP router's address on the gateway's segment: the inventory's `gateway`. */
  nextHop: string;
  /** The gateway's own address on this link: the source the server sees through this link. */
  gatewayAddress: string;
  prefixLength: number;
  /** Answers only through this ISP, and only while its upstream is up for this gateway. */
  probe: string;
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
  /** This gateway's private files (overlay upper dirs, sshd config, keys, logs). */
  dir: string;
  hostKeyFile: string;
  sshdConfig: string;
  sshdPidFile: string;
  links: LabLink[];
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
  processes: StartedProcess[];
  ssh: { user: string; port: number; identityFile: string; knownHosts: string };
  server: {
    ns: string;
    address: string;
    /** New connection -> the peer address, then close. */
    port: number;
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
  }[];
  /** Holds the LAN peers of gateways without a LAN client, so every lan0 has carrier. */
  parkingNs?: string;
  /** Whether each gateway masquerades on wan1 as a single-ISP router does before lbprov. */
  baselineNat: boolean;
  /** The inventory's `defaults.firewall`, when the lab was asked for one (else the inventory leaves it to auto). */
  firewall?: FirewallSetting;
  gateways: LabGateway[];
}
