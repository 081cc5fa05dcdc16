/** The local lab: public API, and the functions behind `lbprov lab up` / `lbprov lab down`. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLab } from './create.js';
import { loadLab, type Lab } from './lab.js';
import type { LanClientChoice } from './layout.js';
import type { LabInit, LinkKind } from './state.js';
import type { FirewallSetting } from '../model/inventory.js';

export { createLab, knownHostsLine, LAB_INITS, LINK_KINDS, type LabOptions } from './create.js';
export { Lab, loadLab, type GatewayRef } from './lab.js';
export {
  connectP2p,
  dropP2p,
  linkAddress,
  renumberDhcp,
  type ConnectOptions,
  type DhcpLease,
  type P2pSession,
  type RenumberOptions,
} from './dynamic.js';
export { LabError } from './errors.js';
export { MAX_LAN_SOURCES } from './addressing.js';
export { defaultWeights, type LanClientChoice } from './layout.js';
export { gatewayFileOnHost, sshdConnections } from './sshd.js';
export type { GatewayContainer, LabGateway, LabInit, LabLink, LabState, LinkKind, LinkPool } from './state.js';
export { rebootGateway, type RebootOptions } from './systemd/reboot.js';
export { cutUpstream, restoreUpstream } from './upstream.js';
export {
  countConnections,
  resetServerCounts,
  serverCounts,
  startLongConnection,
  type ConnectionCountOptions,
  type ConnectionCounts,
  type LongConnection,
} from './traffic.js';
export type { LinkRef } from './links.js';

export const DEFAULT_LAB_DIR = '.lab';
export const DEFAULT_LAB_INVENTORY = 'inventories/lab.yml';

export interface LabUpOptions {
  gateways?: number;
  links?: number;
  weights?: readonly number[];
  /** Default ./.lab (relative to the working directory). */
  dir?: string;
  /** Default inventories/lab.yml (relative to the working directory). */
  inventoryPath?: string;
  lanClients?: LanClientChoice;
  firewall?: FirewallSetting;
  linkKinds?: readonly LinkKind[];
  p2pDown?: boolean;
  lanSources?: number;
  init?: LabInit;
}

/** `lbprov lab up`: builds the lab and writes its inventory. */
export function labUp(options: LabUpOptions = {}): Promise<Lab> {
  return createLab({
    ...options,
    dir: resolve(options.dir ?? DEFAULT_LAB_DIR),
    inventoryPath: resolve(options.inventoryPath ?? DEFAULT_LAB_INVENTORY),
  });
}

/** `lbprov lab down`: removes the lab described by stateFile; false when there was none. */
export async function labDown(stateFile: string = resolve(DEFAULT_LAB_DIR, 'state.json')): Promise<boolean> {
  if (!existsSync(stateFile)) return false;
  await loadLab(stateFile).destroy();
  return true;
}
